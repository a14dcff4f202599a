"""The owner's finished files: list, read, link, delete; and serving bytes behind a signed link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote, urlencode

import msgspec
import structlog

from lfusys.clock import Clock
from lfusys.errors import Forbidden, InvalidInput, NotFound
from lfusys.files.signing import DownloadSigner
from lfusys.storage.ports import BlobStore, ByteRange, FilePage, FileRecord, FileStore, User

log = structlog.get_logger(__name__)


class DownloadLink(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    file_name: str
    file_type: str
    expires_in_seconds: int


class FileContent(msgspec.Struct, frozen=True, kw_only=True):
    record: FileRecord
    size: int
    """Bytes actually stored."""


class FileLibrary:
    def __init__(
        self,
        *,
        files: FileStore,
        blobs: BlobStore,
        signer: DownloadSigner,
        link_ttl: timedelta,
        clock: Clock,
    ) -> None:
        self._files = files
        self._blobs = blobs
        self._signer = signer
        self._link_ttl = link_ttl
        self._clock = clock

    async def list(self, owner: User, limit: int, cursor: str | None) -> FilePage:
        try:
            return await self._files.list_by_owner(owner.id, limit, cursor)
        except ValueError:
            raise InvalidInput("cursor: not a cursor from a previous page") from None

    async def get(self, owner: User, file_id: str) -> FileRecord:
        record = await self._files.get(file_id)
        if record is None or record.owner_id != owner.id:
            raise NotFound("file not found")
        return record

    async def download_link(self, owner: User, file_id: str, content_path: str) -> DownloadLink:
        record = await self.get(owner, file_id)
        ttl = int(self._link_ttl.total_seconds())
        expires = int(self._clock().timestamp()) + ttl
        query = urlencode({"expires": expires, "signature": self._signer.signature(record.id, expires)})
        return DownloadLink(
            # Relative, so it works whatever host and port the client reached the server on.
            url=f"{content_path}?{query}",
            file_name=record.name,
            file_type=record.type,
            expires_in_seconds=ttl,
        )

    async def delete(self, owner: User, file_id: str) -> None:
        """Remove the row (the file disappears at once), then the bytes."""
        record = await self._files.delete(file_id, owner.id)
        if record is None:
            raise NotFound("file not found")
        await self._blobs.delete_file(record.id)
        log.info("file deleted", file_id=record.id, size=record.size)

    async def open_signed(self, file_id: str, expires: int, signature: str) -> FileContent:
        """The file behind a download link, if the link is genuine and unexpired."""
        if not self._signer.is_valid(file_id, expires, signature):
            raise Forbidden("invalid download link")
        if expires < self._clock().timestamp():
            raise Forbidden("download link expired")
        record = await self._files.get(file_id)
        size = await self._blobs.file_size(file_id) if record else None
        if record is None or size is None:
            raise NotFound("file not found")
        return FileContent(record=record, size=size)

    def read(self, file_id: str, byte_range: ByteRange | None) -> AsyncIterator[bytes]:
        return self._blobs.read_file(file_id, byte_range)


def content_disposition(file_name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / 8187)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"
