"""From stored chunks to a finished file, exactly as DESIGN.md §4 step 3 tells it.

Every step tolerates being run twice or concurrently: recording a chunk is set insertion, the claim
has one winner (with a lease another worker may take over), assembly is idempotent, the file row is
created only if absent, and completion is conditional on still holding the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta

import structlog

from lfusys.clock import Clock
from lfusys.files.records import FileRecord
from lfusys.observability.metrics import FILE_SIZE_BYTES, FINALIZE_SECONDS, UPLOADS
from lfusys.observability.tracing import links_to, tracer, tracing_configured
from lfusys.sessions.records import StoredChunk, UploadSession
from lfusys.sessions.renewal import kept_renewed
from lfusys.storage.objects import ChunkStored
from lfusys.storage.ports import (
    AssemblyLost,
    BlobStore,
    ChunkMissing,
    ChunkSpan,
    ChunkWrongSize,
    FileStore,
    Part,
    Piece,
    UploadStore,
    group_pieces,
)

log = structlog.get_logger(__name__)


class AssemblyFailed(Exception):
    """Finalization cannot succeed however often it is retried; the message is the user's reason."""


class LeaseLost(Exception):
    """Another worker has taken the session over; this one must stop."""


_PARTS_PER_BATCH = 500


_FILE_ID_NAMESPACE = uuid.UUID("6f1c33f0-2a8e-4f4e-9a53-2b0d4c1f7e21")


def file_id_for(upload_id: str) -> str:
    """The file an upload becomes: the same id on every attempt, so reruns write the same object."""
    return uuid.uuid5(_FILE_ID_NAMESPACE, upload_id).hex


async def every_chunk_record(uploads: UploadStore, upload_id: str) -> list[StoredChunk]:
    """All of a session's chunk records, read page by page."""
    records: list[StoredChunk] = []
    while page := await uploads.list_chunks(upload_id, after=records[-1].n if records else 0):
        records.extend(page)
    return records


def sha256_hex(data: bytes) -> str:
    """The lower-case hex SHA-256 of ``data``, as chunk records keep it."""
    return hashlib.sha256(data).hexdigest()


def file_checksum(chunk_digests: list[str]) -> str:
    """SHA-256 of the chunks' SHA-256 digests (raw bytes), concatenated in chunk order."""
    outer = hashlib.sha256()
    for digest in chunk_digests:
        outer.update(bytes.fromhex(digest))
    return outer.hexdigest()


class Finalizer:
    def __init__(
        self,
        *,
        uploads: UploadStore,
        files: FileStore,
        blobs: BlobStore,
        worker_id: str,
        lease: timedelta,
        max_attempts: int,
        clock: Clock,
    ) -> None:
        self._uploads = uploads
        self._files = files
        self._blobs = blobs
        self._worker_id = worker_id
        self._lease = lease
        self._max_attempts = max_attempts
        self._clock = clock

    async def record(self, events: Sequence[ChunkStored]) -> list[UploadSession]:
        """Record stored chunks (set semantics, in one step); return the sessions this makes complete,
        to be finalized. Late events and events for unknown uploads change nothing."""
        if not events:
            return []
        sessions = await self._uploads.record_chunks(events, self._clock())
        unknown = {event.upload_id for event in events} - {session.id for session in sessions}
        if unknown:
            log.info("events for unknown uploads dropped", uploads=sorted(unknown))
        return [s for s in sessions if s.recorded_chunks == s.total_chunks and not s.status.finished]

    async def on_chunks_stored(self, events: Sequence[ChunkStored]) -> None:
        """Record stored chunks, and finalize every session that this completes."""
        for session in await self.record(events):
            await self.finalize(session.id, [event for event in events if event.upload_id == session.id])

    async def finalize(self, upload_id: str, completing: Sequence[ChunkStored] = ()) -> bool:
        """Claim, assemble, write the file row, complete, clean up. False if another worker has it
        or the session failed.

        When traced, this is one span (``upload.id``) linked to the requests that stored
        ``completing``, the chunk events that made the session full.

        A permanent problem (a chunk missing or of the wrong size, a file of the wrong size) fails
        the session at once. Any other error lets the lease lapse and propagates, so the event is
        delivered again or the janitor re-drives the session; after ``max_attempts`` claims the
        session fails instead of being tried forever.
        """
        links = links_to(await self._traceparents(completing)) if tracing_configured() else []
        with tracer().start_as_current_span("finalize upload", links=links, attributes={"upload.id": upload_id}):
            return await self._finalize(upload_id)

    async def _traceparents(self, events: Sequence[ChunkStored]) -> list[str | None]:
        return [event.traceparent or await self._blobs.chunk_traceparent(event.upload_id, event.n) for event in events]

    async def _finalize(self, upload_id: str) -> bool:
        now = self._clock()
        session = await self._uploads.claim_finalize(upload_id, self._worker_id, now, now + self._lease)
        if session is None:
            return False
        log.info("finalizing", upload_id=upload_id, chunks=session.total_chunks, attempt=session.finalize_attempts)
        started = time.perf_counter()
        try:
            async with self._lease_kept(upload_id):
                file_id = await self._assemble(session)
                if not await self._uploads.complete(upload_id, self._worker_id, file_id, self._clock()):
                    log.warning("lease lost before completion", upload_id=upload_id)
                    return False
        except AssemblyFailed as exc:
            await self._fail(upload_id, str(exc))
            return False
        except Exception as exc:
            if session.finalize_attempts >= self._max_attempts:
                attempts = session.finalize_attempts
                await self._fail(upload_id, f"the file could not be assembled after {attempts} attempts")
                log.exception("finalization failed for good", upload_id=upload_id)
                return False
            await self._uploads.release_lease(upload_id, self._worker_id, self._clock())
            log.warning("finalization failed; it will be retried", upload_id=upload_id, error=type(exc).__name__)
            raise
        # Counted as soon as it is completed (before its chunks are cleaned up): whoever sees the status
        # sees the count.
        FINALIZE_SECONDS.observe(time.perf_counter() - started)
        UPLOADS.labels("completed").inc()
        FILE_SIZE_BYTES.observe(session.file_size)
        await self._end_sources(session)
        await self.clean_up(upload_id)
        log.info("upload completed", upload_id=upload_id, file_id=file_id, size=session.file_size)
        return True

    async def clean_up(self, upload_id: str, *, failed: bool = False) -> None:
        """Delete a finished session's chunks (the one place that does) and note that it is done.

        A failed session's assembly may have been completed just before it failed: a file without a
        row is not a user's file, so it goes too.
        """
        await self._blobs.delete_upload(upload_id)
        if failed:
            file_id = file_id_for(upload_id)
            if await self._files.get(file_id) is None:
                await self._blobs.delete_file(file_id)
        await self._uploads.mark_cleaned(upload_id, self._clock())

    async def _assemble(self, session: UploadSession) -> str:
        """Assemble the file (unless an earlier attempt did) and write its row; return its id.

        Raises :class:`AssemblyFailed` for what no retry can mend.
        """
        file_id = file_id_for(session.id)
        build: Callable[[], Awaitable[int]]
        if session.sources:
            pieces = await self._source_pieces(session)
            digests = await self._piece_digests(pieces)
            build = functools.partial(self._join, session, file_id, pieces)
        else:
            chunks = await every_chunk_record(self._uploads, session.id)
            digests = await self._chunk_digests(session, chunks)
            build = functools.partial(self._build, session, file_id, chunks)
        checksum = file_checksum(digests)
        size = await self._blobs.file_size(file_id)
        if size is None:
            size = await build()
        if size != session.file_size:
            raise AssemblyFailed(f"the assembled file is {size} bytes, not the declared {session.file_size}")
        await self._files.create_if_absent(
            FileRecord(
                id=file_id,
                owner_id=session.owner_id,
                upload_id=session.id,
                name=session.file_name,
                type=session.file_type,
                size=size,
                checksum=checksum,
                created_at=self._clock(),
            )
        )
        return file_id

    async def _build(self, session: UploadSession, file_id: str, chunks: list[StoredChunk]) -> int:
        """Copy every chunk into the assembly (continuing one an earlier attempt began) and complete it;
        a file of one chunk is that chunk copied."""
        if session.total_chunks == 1:
            try:
                return await self._blobs.copy_chunk_as_file(file_id, session.id, ChunkSpan(1, session.file_size))
            except (ChunkMissing, ChunkWrongSize) as exc:
                raise AssemblyFailed(str(exc)) from exc
        assembly_id = session.assembly_id or await self._start_assembly(session, file_id)
        parts = {chunk.n: Part(chunk.n, chunk.part_etag) for chunk in chunks if chunk.part_etag is not None}
        missing = [ChunkSpan(n, session.chunk_length(n)) for n in range(1, session.total_chunks + 1) if n not in parts]
        async with self._assembling(session, file_id, assembly_id):
            for start in range(0, len(missing), _PARTS_PER_BATCH):
                copied = await self._blobs.copy_parts(
                    file_id, assembly_id, session.id, missing[start : start + _PARTS_PER_BATCH]
                )
                await self._uploads.record_parts(session.id, copied)
                parts.update((part.number, part) for part in copied)
            return await self._blobs.complete_assembly(
                file_id, assembly_id, [parts[n] for n in range(1, session.total_chunks + 1)]
            )

    @contextlib.asynccontextmanager
    async def _assembling(self, session: UploadSession, file_id: str, assembly_id: str) -> AsyncIterator[None]:
        """What a failed assembly step means: a chunk missing or of the wrong size fails the session for
        good (the assembly is thrown away); an assembly gone (aborted, expired) is forgotten, so the next
        attempt starts a new one."""
        try:
            yield
        except (ChunkMissing, ChunkWrongSize) as exc:
            await self._blobs.abort_assembly(file_id, assembly_id)
            raise AssemblyFailed(str(exc)) from exc
        except AssemblyLost:
            await self._uploads.set_assembly(session.id, self._worker_id, None)
            raise

    async def _source_pieces(self, session: UploadSession) -> list[Piece]:
        """The pieces of a joined session's file: each source's chunks but the last, then its tail."""
        pieces: list[Piece] = []
        for source_id in session.sources:
            source = await self._uploads.get(source_id)
            if source is None or not source.status.accepts_chunks:
                raise AssemblyFailed(f"upload {source_id}, a part of this one, is gone")
            last = source.total_chunks
            pieces += [Piece(source.id, source.chunk_length(n), n=n) for n in range(1, last)]
            pieces.append(Piece(source.id, source.chunk_length(last), tail_end=source.file_size))
        return pieces

    async def _piece_digests(self, pieces: list[Piece]) -> list[str]:
        """The SHA-256 of each piece: a chunk's as recorded (or hashed from its bytes), a tail's hashed."""
        known: dict[tuple[str, int], str | None] = {}
        for upload_id in dict.fromkeys(piece.upload_id for piece in pieces):
            known |= {(upload_id, c.n): c.sha256 for c in await every_chunk_record(self._uploads, upload_id)}
        digests = []
        for piece in pieces:
            try:
                if piece.n == 0:
                    tail = await self._blobs.get_tail(piece.upload_id, piece.tail_end)
                    digest = await asyncio.to_thread(sha256_hex, tail)
                else:
                    digest = known.get((piece.upload_id, piece.n)) or await self._blobs.chunk_sha256(
                        piece.upload_id, piece.n
                    )
            except ChunkMissing as exc:
                raise AssemblyFailed(f"upload {piece.upload_id}: {exc}") from exc
            digests.append(digest)
        return digests

    async def _join(self, session: UploadSession, file_id: str, pieces: list[Piece]) -> int:
        """Assemble a joined session's file from its sources' pieces, in parts of at least 5 MiB."""
        assembly_id = session.assembly_id or await self._start_assembly(session, file_id)
        parts = group_pieces(pieces)
        async with self._assembling(session, file_id, assembly_id):
            copied: list[Part] = []
            for start in range(0, len(parts), _PARTS_PER_BATCH):
                copied += await self._blobs.copy_pieces(file_id, assembly_id, parts[start : start + _PARTS_PER_BATCH])
            return await self._blobs.complete_assembly(file_id, assembly_id, copied)

    async def _end_sources(self, session: UploadSession) -> None:
        """A joined file is complete: its sources end (their bytes are the file's now), releasing what
        they reserved; the janitor deletes their chunks."""
        for source_id in session.sources:
            await self._uploads.cancel(source_id, self._clock())

    async def _start_assembly(self, session: UploadSession, file_id: str) -> str:
        assembly_id = await self._blobs.start_assembly(file_id)
        if not await self._uploads.set_assembly(session.id, self._worker_id, assembly_id):
            await self._blobs.abort_assembly(file_id, assembly_id)
            raise LeaseLost(f"the finalize lease on {session.id} was lost")
        return assembly_id

    async def _chunk_digests(self, session: UploadSession, chunks: list[StoredChunk]) -> list[str]:
        known = {chunk.n: chunk.sha256 for chunk in chunks}
        digests = []
        for n in range(1, session.total_chunks + 1):
            digest = known.get(n)
            if digest is None:
                # Stored, but the process died before saving its hash: hash the stored bytes.
                try:
                    digest = await self._blobs.chunk_sha256(session.id, n)
                except ChunkMissing as exc:
                    raise AssemblyFailed(str(exc)) from exc
            digests.append(digest)
        return digests

    async def _fail(self, upload_id: str, reason: str) -> None:
        session = await self._uploads.get(upload_id)
        if await self._uploads.fail(upload_id, self._worker_id, reason, self._clock()):
            UPLOADS.labels("failed").inc()
            log.warning("upload failed", upload_id=upload_id, reason=reason)
            if session is not None and session.assembly_id is not None:
                await self._blobs.abort_assembly(file_id_for(upload_id), session.assembly_id)

    def _lease_kept(self, upload_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Renew the lease while a long finalization runs, so nobody takes it over meanwhile."""
        return kept_renewed(
            lambda: self._uploads.renew_lease(upload_id, self._worker_id, self._clock() + self._lease),
            every=self._lease.total_seconds() / 3,
            what="finalize lease",
            upload_id=upload_id,
        )
