"""The records of upload sessions: their statuses and rules, and what is known of each chunk."""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec


class UploadStatus(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def accepts_chunks(self) -> bool:
        return self in {UploadStatus.PENDING, UploadStatus.IN_PROGRESS}

    @property
    def finished(self) -> bool:
        return self in {
            UploadStatus.COMPLETED,
            UploadStatus.CANCELLED,
            UploadStatus.EXPIRED,
            UploadStatus.FAILED,
        }


class UploadSession(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    owner_id: str
    file_name: str
    file_type: str
    file_size: int
    chunk_size: int
    total_chunks: int
    status: UploadStatus
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    stored_chunks: int = 0
    """Chunks whose bytes are stored and verified (what the user sees as progress)."""
    recorded_chunks: int = 0
    """Chunks whose storage event the worker has recorded (what finalization waits for)."""
    file_id: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    finalize_attempts: int = 0
    """How many times finalization was claimed (each takeover of a lapsed lease counts)."""
    failure_reason: str | None = None
    """Why the session is ``failed``, in a few words a user can read."""
    assembly_id: str | None = None
    """The blob store's assembly of the file (an S3 multipart upload id), once finalization began it."""
    sources: tuple[str, ...] = ()
    """For a file made by joining other uploads (tus concatenation): those uploads, in order. Such a
    session has no chunks of its own (``total_chunks`` 0): it is full from the start, and its file is
    assembled from the sources' bytes: each source's chunks but the last, then its tail ending at its
    ``file_size`` (a source keeps its last piece as a tail, so it never becomes a file of its own)."""

    def chunk_length(self, n: int) -> int:
        """The exact byte length chunk ``n`` (1-based) must have."""
        if n < self.total_chunks:
            return self.chunk_size
        return self.file_size - self.chunk_size * (self.total_chunks - 1)


class StoredChunk(msgspec.Struct, frozen=True, kw_only=True):
    """What is known of one chunk: one record per chunk, so a session's 10,000 fit anywhere."""

    n: int
    sha256: str | None
    """Lower-case hex SHA-256, known once the chunk was accepted through the API."""
    recorded: bool
    """Whether the worker has recorded the chunk's storage event."""
    part_etag: str | None = None
    """Set once the chunk is copied into the file's assembly as part ``n``."""


class ChunkPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a session's chunk records, and where the next one starts."""

    chunks: list[StoredChunk]
    next_cursor: str | None


class SessionPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of an owner's unfinished sessions, newest first, and where the next one starts."""

    sessions: list[UploadSession]
    next_cursor: str | None


class QuotaExceeded(Exception):
    """Raised by :meth:`UploadStore.create` when the owner's usage would pass the quota."""

    def __init__(self, used: int, quota: int) -> None:
        super().__init__(f"{used} of {quota} bytes used")
        self.used = used
        self.quota = quota
