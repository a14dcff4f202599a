"""The owner's finished files: list, read, link, delete; and serving bytes behind a signed link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

import msgspec
import structlog

from lfusys.auth.records import User
from lfusys.clock import Clock
from lfusys.errors import Forbidden, InvalidInput, NotFound
from lfusys.files.ranges import ByteRange
from lfusys.files.records import FilePage, FileRecord
from lfusys.files.signing import SignedLinks
from lfusys.storage.ports import BlobStore, FileStore

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
        links: SignedLinks | None,
        link_ttl: timedelta,
        clock: Clock,
    ) -> None:
        self._files = files
        self._blobs = blobs
        self._links = links
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

    async def download_link(self, owner: User, file_id: str) -> DownloadLink:
        """A link that serves the bytes to whoever holds it until it expires (made by the blob store)."""
        record = await self.get(owner, file_id)
        ttl = int(self._link_ttl.total_seconds())
        url = await self._blobs.download_url(record.id, record.name, record.type, self._clock() + self._link_ttl)
        return DownloadLink(url=url, file_name=record.name, file_type=record.type, expires_in_seconds=ttl)

    async def delete(self, owner: User, file_id: str) -> None:
        """Remove the row (the file disappears at once), then the bytes."""
        record = await self._files.delete(file_id, owner.id)
        if record is None:
            raise NotFound("file not found")
        await self._blobs.delete_file(record.id)
        log.info("file deleted", file_id=record.id, size=record.size)

    async def open_signed(self, file_id: str, expires: int, signature: str) -> FileContent:
        """The file behind one of the app's own download links, if it is genuine and unexpired."""
        if self._links is None:
            raise NotFound("downloads are not served here")
        if not self._links.is_valid(file_id, expires, signature):
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
