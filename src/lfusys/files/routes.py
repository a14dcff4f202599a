"""``/api/v1/files``: list, metadata, download link, delete; and the signed content URL."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, Parameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT, HTTP_206_PARTIAL_CONTENT

from lfusys.auth.middleware import TOKEN_SCOPE_OPT, provide_current_user, requires_user
from lfusys.auth.records import User
from lfusys.errors import error_response, error_responses
from lfusys.files.ranges import RangeNotSatisfiable, parse_range
from lfusys.files.records import FileRecord
from lfusys.files.service import DownloadLink, FileLibrary, content_disposition
from lfusys.services import services_from


class FileView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    type: str
    size: int
    checksum: str
    """SHA-256 (hex) of the concatenated SHA-256 digests of the chunks; see the README."""
    created_at: datetime

    @classmethod
    def of(cls, record: FileRecord) -> FileView:
        return cls(
            id=record.id,
            name=record.name,
            type=record.type,
            size=record.size,
            checksum=record.checksum,
            created_at=record.created_at,
        )


class FileList(msgspec.Struct, frozen=True, kw_only=True):
    files: list[FileView]
    next_cursor: str | None


async def provide_library(state: State) -> FileLibrary:
    return services_from(state).files


class FilesController(Controller):
    path = "/files"
    tags = ["files"]
    guards = [requires_user]
    opt = {TOKEN_SCOPE_OPT: "read"}
    dependencies = {"current_user": Provide(provide_current_user), "library": Provide(provide_library)}

    @get("/", operation_id="listFiles", responses=error_responses(401))
    async def list_files(
        self,
        current_user: NamedDependency[User],
        library: NamedDependency[FileLibrary],
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        cursor: FromQuery[str | None] = None,
    ) -> FileList:
        """The caller's files, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
        page = await library.list(current_user, limit, cursor)
        return FileList(files=[FileView.of(r) for r in page.files], next_cursor=page.next_cursor)

    @get("/{file_id:str}", operation_id="getFile", responses=error_responses(401, 404))
    async def get_file(
        self, file_id: FromPath[str], current_user: NamedDependency[User], library: NamedDependency[FileLibrary]
    ) -> FileView:
        return FileView.of(await library.get(current_user, file_id))

    @get("/{file_id:str}/download", operation_id="getDownloadLink", responses=error_responses(401, 404))
    async def download_link(
        self, file_id: FromPath[str], current_user: NamedDependency[User], library: NamedDependency[FileLibrary]
    ) -> DownloadLink:
        """A signed URL that serves the bytes (with Range support) until it expires."""
        return await library.download_link(current_user, file_id)

    @delete(
        "/{file_id:str}",
        operation_id="deleteFile",
        status_code=HTTP_204_NO_CONTENT,
        responses=error_responses(401, 403, 404),
        opt={TOKEN_SCOPE_OPT: "delete"},
    )
    async def delete_file(
        self, file_id: FromPath[str], current_user: NamedDependency[User], library: NamedDependency[FileLibrary]
    ) -> None:
        """Delete the file and its bytes."""
        await library.delete(current_user, file_id)


class FileContentController(Controller):
    """The signed URL itself: the signature is the credential, so no session is needed."""

    path = "/files/{file_id:str}/content"
    tags = ["files"]
    opt = {"exclude_from_auth": True}
    dependencies = {"library": Provide(provide_library)}

    @get("/", operation_id="getFileContent", responses=error_responses(403, 404, 416))
    async def content(
        self,
        file_id: FromPath[str],
        expires: FromQuery[int],
        signature: FromQuery[str],
        request: Request[Any, Any, Any],
        library: NamedDependency[FileLibrary],
    ) -> Response[Any]:
        """The file's bytes. Supports one ``Range: bytes=…`` (206), or 416 when it cannot be met."""
        content = await library.open_signed(file_id, expires, signature)
        headers = {
            "accept-ranges": "bytes",
            "content-disposition": content_disposition(content.record.name),
            "etag": f'"{content.record.checksum}"',
            "cache-control": "private, no-store",
            # User-supplied bytes: never let a browser run them in this origin.
            "content-security-policy": "sandbox; default-src 'none'",
        }
        try:
            byte_range = parse_range(request.headers.get("range"), content.size)
        except RangeNotSatisfiable as exc:
            response = error_response(str(exc), 416)
            response.headers["content-range"] = f"bytes */{content.size}"
            return response
        status, length = HTTP_200_OK, content.size
        if byte_range is not None:
            status, length = HTTP_206_PARTIAL_CONTENT, byte_range.length
            headers["content-range"] = f"bytes {byte_range.start}-{byte_range.end}/{content.size}"
        headers["content-length"] = str(length)
        return Stream(
            library.read(file_id, byte_range),
            status_code=status,
            media_type=content.record.type,
            headers=headers,
        )
