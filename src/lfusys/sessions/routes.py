"""``/api/v1/uploads``: start, list unfinished, status, stored chunks, cancel."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from lfusys.auth.middleware import TOKEN_SCOPE_OPT, provide_current_user, requires_user
from lfusys.auth.records import User
from lfusys.errors import error_responses
from lfusys.http import requires_json_body
from lfusys.services import services_from
from lfusys.sessions.schemas import ChunkList, CreateUpload, UploadCreated, UploadList, UploadView
from lfusys.sessions.service import UploadSessions

CHUNK_PAGE_LIMIT = 1000
UPLOAD_PAGE_LIMIT = 100


async def provide_sessions(state: State) -> UploadSessions:
    return services_from(state).sessions


class UploadsController(Controller):
    path = "/uploads"
    tags = ["uploads"]
    guards = [requires_user]
    opt = {TOKEN_SCOPE_OPT: "upload"}
    dependencies = {"current_user": Provide(provide_current_user), "sessions": Provide(provide_sessions)}

    @post(
        "/",
        operation_id="startUpload",
        status_code=HTTP_201_CREATED,
        guards=[requires_json_body],
        responses=error_responses(401, 403, 413, 415),
    )
    async def start(
        self,
        data: JSONBody[CreateUpload],
        current_user: NamedDependency[User],
        sessions: NamedDependency[UploadSessions],
    ) -> UploadCreated:
        """Start an upload. The server chooses ``chunk_size`` (a proposal within bounds is accepted)."""
        session = await sessions.start(current_user, data)
        return UploadCreated(
            upload_id=session.id,
            chunk_size=session.chunk_size,
            total_chunks=session.total_chunks,
            expires_at=session.expires_at,
        )

    @get("/", operation_id="listUploads", responses=error_responses(401))
    async def list_unfinished(
        self,
        current_user: NamedDependency[User],
        sessions: NamedDependency[UploadSessions],
        limit: Annotated[int, Parameter(ge=1, le=UPLOAD_PAGE_LIMIT)] = UPLOAD_PAGE_LIMIT,
        cursor: FromQuery[str | None] = None,
    ) -> UploadList:
        """The caller's unfinished uploads, from any device, for resuming: newest first, in pages of up
        to ``limit``; pass ``next_cursor`` back as ``cursor`` for the next page."""
        return UploadList.of(await sessions.list_unfinished(current_user, limit, cursor))

    @get("/{upload_id:str}", operation_id="getUpload", responses=error_responses(401, 404))
    async def status(
        self, upload_id: FromPath[str], current_user: NamedDependency[User], sessions: NamedDependency[UploadSessions]
    ) -> UploadView:
        """Status and progress; ``file_id`` once completed."""
        return UploadView.of(await sessions.get(current_user, upload_id))

    @get("/{upload_id:str}/chunks", operation_id="listChunks", responses=error_responses(401, 404))
    async def chunks(
        self,
        upload_id: FromPath[str],
        current_user: NamedDependency[User],
        sessions: NamedDependency[UploadSessions],
        limit: Annotated[int, Parameter(ge=1, le=CHUNK_PAGE_LIMIT)] = CHUNK_PAGE_LIMIT,
        cursor: FromQuery[str | None] = None,
    ) -> ChunkList:
        """The chunks already stored, with their SHA-256, in pages of up to ``limit`` (ascending);
        pass ``next_cursor`` back as ``cursor`` for the next page."""
        return ChunkList.of(await sessions.chunks(current_user, upload_id, limit, cursor))

    @delete(
        "/{upload_id:str}",
        operation_id="cancelUpload",
        status_code=HTTP_204_NO_CONTENT,
        responses=error_responses(401, 403, 404, 409, 410),
    )
    async def cancel(
        self, upload_id: FromPath[str], current_user: NamedDependency[User], sessions: NamedDependency[UploadSessions]
    ) -> None:
        """Cancel; later chunks get 410 and the stored ones are deleted."""
        await sessions.cancel(current_user, upload_id)
