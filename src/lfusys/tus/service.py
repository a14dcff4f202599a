"""tus uploads over upload sessions: the bytes of each PATCH are cut into the session's chunks, which
go through the same verified store, events, finalizer and quota as the chunk API's; the bytes past the
last whole chunk are kept durably as the upload's *tail* until the next PATCH completes the chunk.

The offset moves only under a claim (a conditional write in the TusStore), so two PATCHes at one offset
on two replicas cannot both write. Without ``Upload-Checksum`` the offset moves after each stored chunk,
and a PATCH cut off midway keeps what arrived (written as the tail); with it, nothing of the PATCH counts
until its checksum is right, and the chunk that would complete the file is not stored before that.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from msgspec.structs import replace

from lfusys.auth.records import User
from lfusys.chunks.service import ChunkIngress
from lfusys.clock import Clock
from lfusys.errors import BodyInterrupted, Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from lfusys.sessions.finalizer import Finalizer, sha256_hex
from lfusys.sessions.records import UploadSession, UploadStatus
from lfusys.sessions.schemas import CreateUpload
from lfusys.sessions.service import UploadSessions, refuse_unless_accepting
from lfusys.settings import MAX_CHUNKS
from lfusys.storage.ports import BlobStore, TusStore
from lfusys.tus.protocol import Checksum, ChecksumFailed, OffsetMismatch
from lfusys.tus.records import TusUpload

log = structlog.get_logger(__name__)

_STORERS = 4
"""Chunks of one PATCH stored at once, at most: the first with the place the PATCH took, each other one
only with a spare place (the owner's next requests still get in:
:meth:`~lfusys.chunks.admission.ChunkAdmission.admit_if_spare`). A PATCH holds at most ``_STORERS + 2``
chunks in memory: those being stored, one waiting, one being filled."""

_FINAL_WRITER = "final upload "
"""How a partial upload's claim names the final upload it is part of."""
_NEVER = datetime(9999, 1, 1, tzinfo=UTC)
"""When the claim of a final upload on its partial uploads lapses."""

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
        finalizer: Finalizer,
        store: TusStore,
        blobs: BlobStore,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._ingress = ingress
        self._finalizer = finalizer
        self._store = store
        self._blobs = blobs
        self._clock = clock
        self._finalizing: set[asyncio.Task[None]] = set()

    async def create(
        self, owner: User, length: int | None, metadata: dict[str, str], raw_metadata: str, *, partial: bool = False
    ) -> TusUpload:
        """A new upload of ``length`` bytes; ``None`` defers the length to a later PATCH. A ``partial``
        upload waits to be joined into a final one (:meth:`join`)."""
        name, media_type = _name_and_type(metadata)
        if length is None:
            session = await self._sessions.start_unsized(owner, name, media_type)
        else:
            session = await self._sessions.start(
                owner, CreateUpload(file_name=name, file_type=media_type, file_size=length)
            )
        upload = TusUpload(
            id=session.id,
            owner_id=owner.id,
            length=session.file_size,
            deferred=length is None,
            concat="partial" if partial else "",
            metadata=raw_metadata,
            created_at=self._clock(),
        )
        await self._store.create(upload)
        return upload

    async def join(self, owner: User, partial_ids: list[str], metadata: dict[str, str], raw_metadata: str) -> TusUpload:
        """A final upload: the owner's complete partial uploads joined in this order. Its file is
        assembled in the background (no byte is copied through here)."""
        if not partial_ids:
            raise InvalidInput("Upload-Concat: a final upload names its partial uploads")
        if len(set(partial_ids)) != len(partial_ids):
            raise InvalidInput("Upload-Concat: a partial upload is named twice")
        sources = []
        for partial_id in partial_ids:
            try:
                state = await self.get(owner, partial_id)
            except NotFound:
                raise NotFound(f"Upload-Concat: no such upload {partial_id}") from None
            if state.upload.concat != "partial":
                raise InvalidInput(f"Upload-Concat: {partial_id} is not a partial upload")
            if state.upload.offset != state.upload.length:
                raise InvalidInput(f"Upload-Concat: partial upload {partial_id} is not complete")
            if (state.upload.writer or "").startswith(_FINAL_WRITER):
                raise Conflict(f"Upload-Concat: partial upload {partial_id} is already part of a final upload")
            refuse_unless_accepting(state.session)
            sources.append(state.session)
        if sum(source.total_chunks for source in sources) > MAX_CHUNKS:
            raise InvalidInput(f"Upload-Concat: the partial uploads hold more than {MAX_CHUNKS} chunks together")
        name, media_type = _name_and_type(metadata)
        session = await self._sessions.start_joined(owner, name, media_type, sources)
        await self._hold_for(session, sources, owner)
        upload = TusUpload(
            id=session.id,
            owner_id=owner.id,
            length=session.file_size,
            offset=session.file_size,
            concat="final",
            metadata=raw_metadata,
            created_at=self._clock(),
        )
        await self._store.create(upload)
        self._finalize_soon(session.id)
        return upload

    async def _hold_for(self, final: UploadSession, sources: list[UploadSession], owner: User) -> None:
        """Make each partial upload part of ``final`` for good (a claim on its end that never lapses), so
        no other final upload can take its bytes (and its reservation) too; if one already is, the final
        upload ends (its reservation released) and nothing is held."""
        now = self._clock()
        held: list[str] = []
        writer = f"{_FINAL_WRITER}{final.id}"
        for source in sources:
            if await self._store.claim(source.id, source.file_size, writer, _NEVER, now) is None:
                for source_id in held:
                    await self._store.release(source_id, writer)
                await self._sessions.cancel(owner, final.id)
                raise Conflict(
                    f"Upload-Concat: partial upload {source.id} is held by another request (a final upload made of"
                    " it, or a write not finished); try again shortly"
                )
            held.append(source.id)

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
        self,
        owner: User,
        upload_id: str,
        offset: int,
        body: AsyncIterator[bytes],
        checksum: Checksum | None,
        length: int | None = None,
    ) -> int:
        """Append ``body`` at ``offset``; the new offset. ``length`` (``Upload-Length``) gives a
        deferred upload its length."""
        state = await self.get(owner, upload_id)
        upload, session = state.upload, state.session
        if upload.concat == "final":
            raise Forbidden("a final upload is made of its partial uploads; it takes no bytes")
        if offset != upload.offset:
            raise OffsetMismatch(f"Upload-Offset is {offset}, but the upload's offset is {upload.offset}")
        fixed = False
        if length is not None:
            upload, session, fixed = await self._fix_length(owner, upload, session, length)
        if upload.offset == upload.length and not fixed:
            async for piece in body:
                if piece:
                    raise TooLarge("the upload is complete; it takes no more bytes")
            return upload.offset
        refuse_unless_accepting(session)
        with self._ingress.admission.admit(owner.id):  # a place, as a chunk PUT takes, before any byte is read
            return await self._claimed_write(owner, session, offset, body, checksum)

    async def _claimed_write(
        self, owner: User, session: UploadSession, offset: int, body: AsyncIterator[bytes], checksum: Checksum | None
    ) -> int:
        writer = secrets.token_hex(8)
        now = self._clock()
        upload_id = session.id
        claimed = await self._store.claim(upload_id, offset, writer, now + CLAIM_LEASE, now)
        if claimed is None:
            raise Conflict("another request is writing at this offset; ask for the offset (HEAD) and go on from it")
        try:
            patch = _Patch(self._ingress, self._store, self._blobs, self._clock, owner, session, claimed, writer)
            return await patch.run(body, checksum)
        finally:
            await self._store.release(upload_id, writer)

    async def _fix_length(
        self, owner: User, upload: TusUpload, session: UploadSession, length: int
    ) -> tuple[TusUpload, UploadSession, bool]:
        """``Upload-Length`` on a PATCH: a deferred upload's length is fixed now (whether it was, and the
        upload and session afterwards); an upload with a length must be given the same one."""
        if not upload.deferred:
            if length != upload.length:
                raise InvalidInput(f"Upload-Length: the upload's length is {upload.length}; it cannot change")
            return upload, session, False
        if length < upload.offset:
            raise InvalidInput(f"Upload-Length: {length} is less than the {upload.offset} bytes already uploaded")
        session = await self._sessions.fix_size(owner, session, length)
        if not await self._store.set_length(upload.id, length):
            raise Conflict("Upload-Length: the upload was given another length meanwhile")
        if session.recorded_chunks == session.total_chunks:
            self._finalize_soon(upload.id)  # every chunk was stored before the length was known
        return replace(upload, length=length, deferred=False), session, True

    async def terminate(self, owner: User, upload_id: str) -> None:
        state = await self.get(owner, upload_id)
        await self._sessions.cancel(owner, state.upload.id)

    def _finalize_soon(self, upload_id: str) -> None:
        """Finalize a session that is full without a storage event to say so (a final upload; one whose
        chunks were all stored before its length was known), beside the request. If this process stops
        first, the janitor finalizes it as a stalled session."""
        task = asyncio.create_task(self._finalize(upload_id))
        self._finalizing.add(task)
        task.add_done_callback(self._finalizing.discard)

    async def _finalize(self, upload_id: str) -> None:
        try:
            await self._finalizer.finalize(upload_id)
        except Exception:
            log.exception("finalizing a tus upload failed; the janitor will try again", upload_id=upload_id)


def _name_and_type(metadata: dict[str, str]) -> tuple[str, str]:
    """The file's name and media type from ``Upload-Metadata`` (the keys tus clients use)."""
    name = metadata.get("filename") or metadata.get("name") or "upload"
    media_type = metadata.get("filetype") or metadata.get("type") or "application/octet-stream"
    return name, media_type


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
        """Where the first chunk not stored yet begins in the file."""
        self._filling = self._start
        """Where the chunk being filled from the body begins (ahead of ``_start`` while chunks are stored)."""
        self._pieces: list[bytes | memoryview] = []
        self._filled = 0
        self._partial = upload.concat == "partial"
        self._verifying = False
        """Whether the chunks stored wait for the checksum before the offset may move over them."""
        self._holding_last = self._partial
        """Whether the chunk that completes the upload is kept back: until the checksum is right, or for
        good in a partial upload (whose last piece stays its tail, so it never becomes a file itself)."""
        self._unverified: list[int] = []
        """Chunks this PATCH stored before its checksum was known (thrown away if it is wrong)."""
        self._stored: dict[int, int] = {}
        """Chunks stored ahead of one still being stored: number → length."""
        self._committing = asyncio.Lock()

    def _number(self, start: int) -> int:
        return start // self._session.chunk_size + 1

    async def run(self, body: AsyncIterator[bytes], checksum: Checksum | None) -> int:
        """Receive the body and store its whole chunks at the same time: while chunks are hashed and
        stored (two at once, each going through the chunk store's writes, fsyncs and records), the next
        arrives; the offset moves over each chunk once every chunk before it is stored too."""
        if self.committed > self._start:
            tail = await self._blobs.get_tail(self._upload.id, self.committed)
            self._pieces, self._filled = [tail], len(tail)
        hasher = checksum.hasher() if checksum is not None else None
        self._verifying = checksum is not None
        self._holding_last = self._partial or self._verifying
        whole: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=1)
        stopped: BodyInterrupted | TooLarge | None = None

        async def receive() -> None:
            nonlocal stopped
            try:
                await self._fill(b"", whole)  # the tail alone may complete the last chunk, its length now known
                async for piece in body:
                    if self._filling + self._filled + len(piece) > self._upload.length:
                        raise TooLarge(f"the upload is {self._upload.length} bytes; this PATCH goes past its end")
                    if hasher is not None:
                        hasher.update(piece)
                    await self._fill(piece, whole)
            except (BodyInterrupted, TooLarge) as exc:
                stopped = exc  # what arrived before is still stored (unless a checksum says otherwise)
            await whole.put(None)

        async def store(first: bool) -> None:
            admission = self._ingress.admission
            with contextlib.nullcontext(True) if first else admission.admit_if_spare(self._owner.id) as placed:
                if not placed:
                    return
                while (item := await whole.get()) is not None:
                    await self._store_chunk(*item)
                await whole.put(None)  # the end, for the other storing tasks too

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(receive())
                for number in range(_STORERS):
                    group.create_task(store(first=number == 0))
        except BaseExceptionGroup as failed:
            await self._forget_unverified()
            raise failed.exceptions[0] from None
        except BaseException:
            await self._forget_unverified()
            raise
        if isinstance(stopped, TooLarge):
            await self._forget_unverified()
            raise stopped
        if checksum is not None:
            assert hasher is not None
            if stopped is not None or hasher.digest() != checksum.digest:
                await self._forget_unverified()
                if stopped is not None:
                    raise stopped
                raise ChecksumFailed(f"the body does not match Upload-Checksum ({checksum.algorithm})")
            self._unverified.clear()
            self._verifying = False
            self._holding_last = self._partial
            last = self._session.total_chunks
            whole_last = self._number(self._filling) == last and self._filled == self._session.chunk_length(last)
            if whole_last and not self._partial:
                await self._store_chunk(last, self._take())
        await self._keep_tail()
        if stopped is not None:
            log.info("tus PATCH cut off; what arrived is kept", upload_id=self._upload.id, offset=self.committed)
        return self.committed

    async def _fill(self, piece: bytes, whole: asyncio.Queue[tuple[int, bytes] | None]) -> None:
        """Add ``piece`` to the chunk being filled; hand each chunk that is whole to the storing tasks."""
        session = self._session
        view = memoryview(piece)
        while True:
            n = self._number(self._filling)
            if self._filled == session.chunk_length(n) and not (self._holding_last and n == session.total_chunks):
                await whole.put((n, self._take()))
            if not view:
                return
            take = view[: session.chunk_length(self._number(self._filling)) - self._filled]
            self._pieces.append(take)
            self._filled += len(take)
            view = view[len(take) :]

    def _take(self) -> bytes:
        """The chunk being filled, as one block; the next one begins after it."""
        data = b"".join(self._pieces)
        self._pieces, self._filled = [], 0
        self._filling += len(data)
        return data

    async def _store_chunk(self, n: int, data: bytes) -> None:
        await self._ingress.receive(
            self._owner,
            self._session.id,
            n,
            sha256=await asyncio.to_thread(sha256_hex, data),
            content_length=len(data),
            body=_once(data),
            digest_known=True,
            admitted=True,
        )
        self._stored[n] = len(data)
        async with self._committing:  # in chunk order, whichever storing task finished first
            moved = False
            while (length := self._stored.pop(self._number(self._start), None)) is not None:
                if self._verifying:
                    self._unverified.append(self._number(self._start))
                self._start += length
                moved = True
            if moved and not self._verifying:
                await self._advance(self._start)

    async def _keep_tail(self) -> None:
        """Store the bytes past the last whole chunk as the tail, and move the offset to their end."""
        end = self._start + self._filled
        if end == self.committed:
            return
        if self._filled:
            await self._blobs.put_tail(self._upload.id, end, b"".join(self._pieces))
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
        """Delete the chunks this PATCH stored that the offset does not cover (not verified yet, or
        stored ahead of one that failed)."""
        for n in [*self._unverified, *self._stored]:
            await self._blobs.delete_chunk(self._upload.id, n)
        self._unverified.clear()
        self._stored.clear()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def expires_at(state: TusState) -> datetime | None:
    """``Upload-Expires`` for an upload that still takes bytes."""
    return state.session.expires_at if state.session.status.accepts_chunks else None
