"""tus uploads over upload sessions: the bytes of each PATCH are cut into the session's chunks, which
go through the same verified store, events, finalizer and quota as the chunk API's; the bytes past the
last whole chunk are kept durably as the upload's *tail* until the next PATCH completes the chunk.

The offset moves only under a claim (a conditional write in the TusStore), so two PATCHes at one offset
on two replicas cannot both write. Without ``Upload-Checksum`` the offset moves after each stored chunk,
and a PATCH cut off midway keeps what arrived (written as the tail); with it, nothing of the PATCH counts
until its checksum is right, and the chunk that would complete the file is not stored before that.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from lfusys.auth.records import User
from lfusys.chunks.service import ChunkIngress
from lfusys.clock import Clock
from lfusys.errors import BodyInterrupted, Conflict, NotFound, TooLarge
from lfusys.sessions.records import UploadSession, UploadStatus
from lfusys.sessions.schemas import CreateUpload
from lfusys.sessions.service import UploadSessions, refuse_unless_accepting
from lfusys.storage.ports import BlobStore, TusStore
from lfusys.tus.protocol import Checksum, ChecksumFailed, OffsetMismatch
from lfusys.tus.records import TusUpload

log = structlog.get_logger(__name__)

CLAIM_LEASE = timedelta(minutes=2)
"""How long a PATCH's claim on the offset lasts without being renewed (each stored chunk renews it):
a request that died holds the offset no longer than this."""


@dataclass(frozen=True)
class TusState:
    upload: TusUpload
    session: UploadSession


class TusUploads:
    def __init__(
        self,
        *,
        sessions: UploadSessions,
        ingress: ChunkIngress,
        store: TusStore,
        blobs: BlobStore,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._ingress = ingress
        self._store = store
        self._blobs = blobs
        self._clock = clock

    async def create(self, owner: User, length: int, metadata: dict[str, str], raw_metadata: str) -> TusUpload:
        session = await self._sessions.start(
            owner,
            CreateUpload(
                file_name=metadata.get("filename") or metadata.get("name") or "upload",
                file_type=metadata.get("filetype") or metadata.get("type") or "application/octet-stream",
                file_size=length,
            ),
        )
        upload = TusUpload(
            id=session.id, owner_id=owner.id, length=length, metadata=raw_metadata, created_at=self._clock()
        )
        await self._store.create(upload)
        return upload

    async def get(self, owner: User, upload_id: str) -> TusState:
        """The owner's tus upload and its session; another user's, or an upload not made through tus,
        is unknown (404). A session that ended without a file is :class:`~lfusys.errors.Gone`."""
        upload = await self._store.get(upload_id)
        if upload is None or upload.owner_id != owner.id:
            raise NotFound("no such upload")
        session = await self._sessions.get(owner, upload_id)
        if session.status in {UploadStatus.CANCELLED, UploadStatus.EXPIRED, UploadStatus.FAILED}:
            refuse_unless_accepting(session)
        return TusState(upload, session)

    async def write(
        self, owner: User, upload_id: str, offset: int, body: AsyncIterator[bytes], checksum: Checksum | None
    ) -> int:
        """Append ``body`` at ``offset``; the new offset."""
        state = await self.get(owner, upload_id)
        upload, session = state.upload, state.session
        if offset != upload.offset:
            raise OffsetMismatch(f"Upload-Offset is {offset}, but the upload's offset is {upload.offset}")
        if upload.offset == upload.length:
            async for piece in body:
                if piece:
                    raise TooLarge("the upload is complete; it takes no more bytes")
            return upload.offset
        refuse_unless_accepting(session)
        writer = secrets.token_hex(8)
        now = self._clock()
        claimed = await self._store.claim(upload_id, offset, writer, now + CLAIM_LEASE, now)
        if claimed is None:
            raise Conflict("another request is writing at this offset; ask for the offset (HEAD) and go on from it")
        try:
            patch = _Patch(self._ingress, self._store, self._blobs, self._clock, owner, session, claimed, writer)
            return await patch.run(body, checksum)
        finally:
            await self._store.release(upload_id, writer)

    async def terminate(self, owner: User, upload_id: str) -> None:
        state = await self.get(owner, upload_id)
        await self._sessions.cancel(owner, state.upload.id)


class _Patch:
    """One PATCH: its bytes, the chunk being filled, and how far the offset has moved."""

    def __init__(
        self,
        ingress: ChunkIngress,
        store: TusStore,
        blobs: BlobStore,
        clock: Clock,
        owner: User,
        session: UploadSession,
        upload: TusUpload,
        writer: str,
    ) -> None:
        self._ingress = ingress
        self._store = store
        self._blobs = blobs
        self._clock = clock
        self._owner = owner
        self._session = session
        self._upload = upload
        self._writer = writer
        self.committed = upload.offset
        """The offset as stored: bytes below it are durable."""
        self._start = upload.offset - upload.offset % session.chunk_size
        """Where the chunk being filled begins in the file."""
        self._buffer = bytearray()
        self._holding_last = False
        """Whether the chunk that completes the file waits for the checksum."""
        self._unverified: list[int] = []
        """Chunks this PATCH stored before its checksum was known (thrown away if it is wrong)."""

    @property
    def _n(self) -> int:
        return self._start // self._session.chunk_size + 1

    async def run(self, body: AsyncIterator[bytes], checksum: Checksum | None) -> int:
        if self.committed > self._start:
            self._buffer += await self._blobs.get_tail(self._upload.id, self.committed)
        hasher = checksum.hasher() if checksum is not None else None
        self._holding_last = checksum is not None
        interrupted: BodyInterrupted | None = None
        try:
            async for piece in body:
                if self._start + len(self._buffer) + len(piece) > self._upload.length:
                    raise TooLarge(f"the upload is {self._upload.length} bytes; this PATCH goes past its end")
                if hasher is not None:
                    hasher.update(piece)
                self._buffer += piece
                await self._store_whole_chunks()
        except BodyInterrupted as exc:
            interrupted = exc
        except BaseException:
            await self._forget_unverified()
            raise
        if checksum is not None:
            assert hasher is not None
            if interrupted is not None or hasher.digest() != checksum.digest:
                await self._forget_unverified()
                if interrupted is not None:
                    raise interrupted
                raise ChecksumFailed(f"the body does not match Upload-Checksum ({checksum.algorithm})")
            self._unverified.clear()
            self._holding_last = False
            await self._store_whole_chunks()
        await self._keep_tail()
        if interrupted is not None:
            log.info("tus PATCH cut off; what arrived is kept", upload_id=self._upload.id, offset=self.committed)
        return self.committed

    async def _store_whole_chunks(self) -> None:
        session = self._session
        while self._n <= session.total_chunks and len(self._buffer) >= session.chunk_length(self._n):
            n, length = self._n, session.chunk_length(self._n)
            if self._holding_last and n == session.total_chunks:
                return
            data = bytes(self._buffer[:length])
            await self._ingress.receive(
                self._owner,
                session.id,
                n,
                sha256=hashlib.sha256(data).hexdigest(),
                content_length=length,
                body=_once(data),
            )
            del self._buffer[:length]
            self._start += length
            if self._holding_last:
                self._unverified.append(n)
            else:
                await self._advance(self._start)

    async def _keep_tail(self) -> None:
        """Store the bytes past the last whole chunk as the tail, and move the offset to their end."""
        end = self._start + len(self._buffer)
        if end == self.committed:
            return
        if self._buffer:
            await self._blobs.put_tail(self._upload.id, end, bytes(self._buffer))
        await self._advance(end)

    async def _advance(self, offset: int) -> None:
        previous = self.committed
        until = self._clock() + CLAIM_LEASE
        if not await self._store.advance(self._upload.id, self._writer, previous, offset, until):
            raise Conflict("this request's claim on the offset lapsed; ask for the offset (HEAD) and go on from it")
        self.committed = offset
        if previous % self._session.chunk_size:
            await self._blobs.delete_tail(self._upload.id, previous)

    async def _forget_unverified(self) -> None:
        for n in self._unverified:
            await self._blobs.delete_chunk(self._upload.id, n)
        self._unverified.clear()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def expires_at(state: TusState) -> datetime | None:
    """``Upload-Expires`` for an upload that still takes bytes."""
    return state.session.expires_at if state.session.status.accepts_chunks else None
