"""Starting, reading, listing and cancelling upload sessions on behalf of their owner."""

from __future__ import annotations

import math
import uuid

import msgspec
import structlog

from lfusys.auth.records import User
from lfusys.clock import Clock
from lfusys.errors import Conflict, Gone, InvalidInput, NotFound, TooLarge
from lfusys.observability.metrics import UPLOADS
from lfusys.sessions.policy import (
    check_file_size,
    clean_file_name,
    clean_file_type,
    plan_chunks,
    quota_exceeded,
)
from lfusys.sessions.records import ChunkPage, QuotaExceeded, SessionPage, UploadSession, UploadStatus
from lfusys.sessions.schemas import CreateUpload
from lfusys.settings import Settings
from lfusys.storage.cursors import decode_cursor, encode_cursor
from lfusys.storage.ports import UploadStore

log = structlog.get_logger(__name__)


class UploadSessions:
    def __init__(self, *, uploads: UploadStore, settings: Settings, clock: Clock) -> None:
        self._uploads = uploads
        self._settings = settings
        self._clock = clock

    async def start(self, owner: User, request: CreateUpload) -> UploadSession:
        check_file_size(request.file_size, self._settings)
        plan = plan_chunks(request.file_size, request.chunk_size, self._settings)
        return await self._create(
            owner,
            request.file_name,
            request.file_type,
            file_size=request.file_size,
            chunk_size=plan.chunk_size,
            total_chunks=plan.total_chunks,
        )

    async def start_unsized(self, owner: User, file_name: str, file_type: str) -> UploadSession:
        """A session whose size is not known yet: it reserves the largest file the owner has room for
        (chunked for that size, so it cannot be complete before :meth:`fix_size` gives the real one)."""
        room = self._settings.uploads.max_file_size
        quota = self._settings.uploads.user_quota_bytes
        if quota:
            used = await self._uploads.usage(owner.id)
            if used >= quota:
                raise quota_exceeded(used, quota)
            room = min(room, quota - used)
        plan = plan_chunks(room, None, self._settings)
        return await self._create(
            owner, file_name, file_type, file_size=room, chunk_size=plan.chunk_size, total_chunks=plan.total_chunks
        )

    async def start_joined(
        self, owner: User, file_name: str, file_type: str, sources: list[UploadSession]
    ) -> UploadSession:
        """A session whose file is ``sources`` joined in order (their chunks, then each one's tail). It
        has no chunks of its own, so it is full from the start; the sources' reservations hold its bytes
        until it completes and ends them, so it reserves its size past the quota."""
        file_size = sum(source.file_size for source in sources)
        check_file_size(file_size, self._settings)
        return await self._create(
            owner,
            file_name,
            file_type,
            file_size=file_size,
            chunk_size=0,
            total_chunks=0,
            status=UploadStatus.IN_PROGRESS,
            sources=tuple(source.id for source in sources),
            within_quota=False,
        )

    async def _create(
        self,
        owner: User,
        file_name: str,
        file_type: str,
        *,
        file_size: int,
        chunk_size: int,
        total_chunks: int,
        status: UploadStatus = UploadStatus.PENDING,
        sources: tuple[str, ...] = (),
        within_quota: bool = True,
    ) -> UploadSession:
        now = self._clock()
        session = UploadSession(
            id=uuid.uuid4().hex,
            owner_id=owner.id,
            file_name=clean_file_name(file_name),
            file_type=clean_file_type(file_type),
            file_size=file_size,
            chunk_size=chunk_size,
            total_chunks=total_chunks,
            status=status,
            created_at=now,
            updated_at=now,
            expires_at=now + self._settings.uploads.upload_ttl,
            sources=sources,
        )
        quota = (self._settings.uploads.user_quota_bytes or None) if within_quota else None
        try:
            await self._uploads.create(session, quota=quota)
        except QuotaExceeded as exc:
            raise quota_exceeded(exc.used, exc.quota) from None
        UPLOADS.labels("started").inc()
        log.info("upload started", upload_id=session.id, size=session.file_size, chunks=session.total_chunks)
        return session

    async def fix_size(self, owner: User, session: UploadSession, file_size: int) -> UploadSession:
        """Give ``session`` (the owner's, from :meth:`start_unsized`, as :meth:`get` read it) its real size,
        at most what it reserved, keeping its chunk size; its reservation shrinks to that size."""
        refuse_unless_accepting(session)
        check_file_size(file_size, self._settings)
        if file_size > session.file_size:
            raise TooLarge(f"the upload may be at most {session.file_size} bytes (what it reserved)")
        fixed = await self._uploads.set_size(session.id, file_size, math.ceil(file_size / session.chunk_size))
        if fixed is None:
            refuse_unless_accepting(await self.get(owner, session.id))
            raise Conflict("the upload's size could not be fixed")
        log.info("upload size fixed", upload_id=session.id, size=file_size, chunks=fixed.total_chunks)
        return fixed

    async def get(self, owner: User, upload_id: str) -> UploadSession:
        """The owner's session; someone else's is reported as unknown.

        A session past its expiry reads as ``expired`` even before the janitor has marked it.
        """
        session = await self._uploads.get(upload_id)
        if session is None or session.owner_id != owner.id:
            raise NotFound("upload not found")
        return self.as_seen(session)

    def as_seen(self, session: UploadSession) -> UploadSession:
        """The session as users see it: past its expiry it reads as ``expired`` even before the
        janitor has marked it."""
        if session.status.accepts_chunks and session.expires_at <= self._clock():
            return msgspec.structs.replace(session, status=UploadStatus.EXPIRED)
        return session

    async def list_unfinished(self, owner: User, limit: int, cursor: str | None) -> SessionPage:
        """One page of the owner's unfinished sessions, newest first; ``cursor`` comes from the previous page.

        A session past its expiry that the janitor has not expired yet is left out, so a page may
        hold fewer than ``limit`` sessions while more follow."""
        try:
            page = await self._uploads.list_unfinished(owner.id, limit, cursor)
        except ValueError:
            raise InvalidInput("cursor: not a cursor from a previous page") from None
        now = self._clock()
        live = [s for s in page.sessions if s.status is UploadStatus.FINALIZING or s.expires_at > now]
        return SessionPage(sessions=live, next_cursor=page.next_cursor)

    async def chunks(self, owner: User, upload_id: str, limit: int, cursor: str | None) -> ChunkPage:
        """One page of the chunks stored so far, ascending; ``cursor`` comes from the previous page."""
        session = await self.get(owner, upload_id)
        after = 0
        if cursor is not None:
            try:
                (last,) = decode_cursor(cursor, 1)
                after = int(last)
            except ValueError:
                raise InvalidInput("cursor: not a cursor from a previous page") from None
        chunks = await self._uploads.list_chunks(session.id, after=after, limit=limit + 1)
        more = len(chunks) > limit
        chunks = chunks[:limit]
        return ChunkPage(chunks=chunks, next_cursor=encode_cursor(str(chunks[-1].n)) if more else None)

    async def cancel(self, owner: User, upload_id: str) -> None:
        """Cancel an unfinished session; its chunks are deleted by the janitor. Repeating it is harmless."""
        session = await self.get(owner, upload_id)
        if session.status in {UploadStatus.FINALIZING, UploadStatus.COMPLETED}:
            raise Conflict(f"upload is {session.status.value} and can no longer be cancelled")
        if session.status is UploadStatus.EXPIRED:
            raise Gone("upload has expired")
        cancelled = await self._uploads.cancel(session.id, self._clock())
        if cancelled is not None and cancelled.status is not UploadStatus.CANCELLED:
            raise Conflict(f"upload is {cancelled.status.value} and can no longer be cancelled")
        UPLOADS.labels("cancelled").inc()
        log.info("upload cancelled", upload_id=session.id)


def refuse_unless_accepting(session: UploadSession) -> None:
    """Raise the error a chunk for this session gets when the session takes no more chunks.

    ``session`` comes from :meth:`UploadSessions.get`, which already reports an overdue one as expired.
    """
    if session.status in {UploadStatus.FINALIZING, UploadStatus.COMPLETED}:
        raise Conflict(f"upload is {session.status.value}; it takes no more chunks")
    if session.status is UploadStatus.CANCELLED:
        raise Gone("upload was cancelled")
    if session.status is UploadStatus.FAILED:
        raise Gone("upload failed")
    if session.status is UploadStatus.EXPIRED:
        raise Gone("upload has expired")
