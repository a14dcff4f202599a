"""Accepting one chunk: checks before any byte is read, then a streamed, verified, atomic store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import NoReturn

import msgspec
import structlog

from lfusys.auth.records import User
from lfusys.chunks.admission import ChunkAdmission
from lfusys.clock import Clock
from lfusys.errors import (
    ChecksumMismatch,
    Conflict,
    DependencyUnavailable,
    InsufficientStorage,
    InvalidInput,
    NotFound,
    TooLarge,
)
from lfusys.observability.metrics import BYTES_RECEIVED, CHUNK_PUT_SECONDS
from lfusys.sessions.records import UploadSession
from lfusys.sessions.service import UploadSessions, refuse_unless_accepting
from lfusys.storage.ports import (
    BlobStore,
    ChunkConflict,
    ChunkHashMismatch,
    ChunkSizeMismatch,
    StorageFull,
    UploadRemoved,
    UploadStore,
)

log = structlog.get_logger(__name__)


class ChunkReceipt(msgspec.Struct, frozen=True, kw_only=True):
    n: int
    size: int
    sha256: str
    already_stored: bool
    """True when this exact chunk had been stored before (a harmless repeat)."""


class ChunkIngress:
    def __init__(
        self,
        *,
        sessions: UploadSessions,
        uploads: UploadStore,
        blobs: BlobStore,
        admission: ChunkAdmission,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._uploads = uploads
        self._blobs = blobs
        self._admission = admission
        self._clock = clock

    @property
    def admission(self) -> ChunkAdmission:
        """The places for chunks streaming in, for a caller that stores several chunks of one request."""
        return self._admission

    async def receive(
        self,
        owner: User,
        upload_id: str,
        n: int,
        *,
        sha256: str,
        content_length: int | None,
        body: AsyncIterator[bytes],
        digest_known: bool = False,
        admitted: bool = False,
    ) -> ChunkReceipt:
        """Store chunk ``n`` of the owner's upload. ``digest_known``: ``sha256`` was computed from these
        very bytes in this process (the tus endpoint does), so the store need not hash them again.
        ``admitted``: the caller holds a place for it (:attr:`admission`) already."""
        # First of all, before any lookup: under overload a refusal should cost next to nothing.
        placed = contextlib.nullcontext() if admitted else self._admission.admit(owner.id)
        with placed, CHUNK_PUT_SECONDS.time():
            session = await self._sessions.get(owner, upload_id)
            refuse_unless_accepting(session)
            if not 1 <= n <= session.total_chunks:
                raise InvalidInput(f"chunk number must be between 1 and {session.total_chunks}")
            expected = session.chunk_length(n)
            if content_length is not None and content_length != expected:
                _refuse_size(n, expected, content_length, too_large=content_length > expected)
            try:
                stored = await self._store(session, n, body, expected, sha256, digest_known)
            except UploadRemoved:
                # Its chunks were deleted while this one arrived: the session has ended meanwhile.
                refuse_unless_accepting(await self._sessions.get(owner, upload_id))
                raise DependencyUnavailable("the upload changed while the chunk arrived; send it again") from None
            # The hash is kept only if the session still takes chunks; it may have ended while the bytes
            # streamed in (cancelled, expired, finalized), and then this chunk is not kept either.
            after = await self._uploads.save_chunk_hash(session.id, n, sha256, self._clock())
            seen = self._sessions.as_seen(after) if after is not None else None
            if seen is None or not seen.status.accepts_chunks:
                if stored:
                    await self._blobs.delete_chunk(session.id, n)
                if seen is None:
                    raise NotFound("upload not found")
                refuse_unless_accepting(seen)
            if stored:
                BYTES_RECEIVED.inc(expected)
            log.debug("chunk stored", upload_id=session.id, n=n, size=expected, repeat=not stored)
            return ChunkReceipt(n=n, size=expected, sha256=sha256, already_stored=not stored)

    async def _store(
        self, session: UploadSession, n: int, body: AsyncIterator[bytes], expected: int, sha256: str, digest_known: bool
    ) -> bool:
        try:
            return await self._blobs.put_chunk(session.id, n, body, expected, sha256, digest_known=digest_known)
        except ChunkSizeMismatch as exc:
            _refuse_size(n, expected, exc.received, too_large=exc.too_large)
        except ChunkHashMismatch as exc:
            raise ChecksumMismatch(f"chunk {n} does not match X-Chunk-Hash (its SHA-256 is {exc.actual})") from None
        except ChunkConflict:
            raise Conflict(f"chunk {n} is already stored with different content") from None
        except StorageFull:
            log.error("out of storage space; chunk refused", upload_id=session.id, n=n)
            raise InsufficientStorage("the server has run out of storage space; try again later") from None


def _refuse_size(n: int, expected: int, received: int, *, too_large: bool) -> NoReturn:
    if too_large:
        raise TooLarge(f"chunk {n} must be exactly {expected} bytes; received more")
    raise InvalidInput(f"chunk {n} must be exactly {expected} bytes; received {received}")
