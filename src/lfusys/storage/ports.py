"""The in-process interfaces between domain code and storage backends.

Domain modules depend only on these Protocols and records; each backend (``storage/local`` now,
``storage/aws`` later) provides adapters that pass the shared contract tests in
``tests/contract``.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Protocol

import msgspec


class EmailTaken(Exception):
    """Raised by :meth:`UserStore.create` when the (normalised) email already has an account."""


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    email: str
    """Normalised (lower-case) address; unique across users."""
    name: str
    password_hash: str | None
    """``None`` for accounts that only sign in through an OAuth provider."""
    created_at: datetime

    @property
    def providers(self) -> tuple[str, ...]:
        return ("password",) if self.password_hash is not None else ()


class RefreshToken(msgspec.Struct, frozen=True, kw_only=True):
    jti: str
    family_id: str
    user_id: str
    expires_at: datetime


class RefreshOutcome(enum.Enum):
    """What happened when a refresh token was presented for rotation."""

    ROTATED = "rotated"
    """It was current: it is now spent and the caller may issue its successor."""
    RECENTLY_ROTATED = "recently_rotated"
    """It was rotated within the grace window (two tabs, a lost response): the caller may issue
    another successor, and the family stays valid."""
    REUSED = "reused"
    """It had been rotated before the grace window: somebody replayed it."""
    REVOKED = "revoked"
    """Its family was revoked (logout or an earlier replay)."""
    UNKNOWN = "unknown"
    """No such token was ever issued here."""


class UserStore(Protocol):
    async def create(self, user: User) -> None:
        """Insert ``user``; raise :class:`EmailTaken` if its email exists (one winner under races)."""
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...


class TokenStore(Protocol):
    """Refresh-token families: one family per sign-in; each refresh spends a token and adds its successor."""

    async def start_family(self, family_id: str, user_id: str, now: datetime) -> None: ...

    async def add_refresh_token(self, token: RefreshToken) -> None: ...

    async def spend_refresh_token(self, jti: str, now: datetime, grace: timedelta) -> RefreshOutcome:
        """Mark ``jti`` as rotated if it is current; exactly one concurrent caller gets ROTATED.

        Presented again within ``grace`` of its rotation it is RECENTLY_ROTATED, later REUSED.
        """
        ...

    async def revoke_family(self, family_id: str, now: datetime) -> None: ...

    async def is_family_active(self, family_id: str) -> bool: ...


# --- uploads and files ----------------------------------------------------------------------


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

    def chunk_length(self, n: int) -> int:
        """The exact byte length chunk ``n`` (1-based) must have."""
        if n < self.total_chunks:
            return self.chunk_size
        return self.file_size - self.chunk_size * (self.total_chunks - 1)


class StoredChunk(msgspec.Struct, frozen=True, kw_only=True):
    n: int
    sha256: str | None
    """Lower-case hex SHA-256, known once the chunk was accepted through the API."""
    recorded: bool


class FileRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    owner_id: str
    upload_id: str
    name: str
    type: str
    size: int
    checksum: str
    """SHA-256 (hex) of the concatenated SHA-256 digests of the chunks, in order."""
    created_at: datetime


class FilePage(msgspec.Struct, frozen=True, kw_only=True):
    files: list[FileRecord]
    next_cursor: str | None


class QuotaExceeded(Exception):
    """Raised by :meth:`UploadStore.create` when the owner's usage would pass the quota."""

    def __init__(self, used: int, quota: int) -> None:
        super().__init__(f"{used} of {quota} bytes used")
        self.used = used
        self.quota = quota


class UploadStore(Protocol):
    """Upload sessions and their chunk sets, with the conditional steps of the lifecycle.

    Each owner has a usage record: the declared size of every unfinished session plus the size of
    every file. Creating a session reserves its size in the same atomic step as the insert; a
    session that ends without a file (cancelled, expired, failed) releases it in the same step as
    its status change; deleting a file releases its size (:meth:`FileStore.delete`).
    """

    async def create(self, session: UploadSession, quota: int | None) -> None:
        """Insert ``session`` and reserve its size; raise :class:`QuotaExceeded` (and store
        nothing) if the owner's usage would then exceed ``quota`` (``None``: no limit)."""
        ...

    async def get(self, upload_id: str) -> UploadSession | None: ...

    async def list_unfinished(self, owner_id: str) -> list[UploadSession]:
        """Sessions still accepting chunks or being finalized, newest first."""
        ...

    async def usage(self, owner_id: str) -> int:
        """Bytes the owner holds: unfinished sessions' declared sizes plus files."""
        ...

    async def save_chunk_hash(self, upload_id: str, n: int, sha256: str, now: datetime) -> None:
        """Remember the verified hash of stored chunk ``n`` (first hash wins)."""
        ...

    async def record_chunk(self, upload_id: str, n: int, now: datetime) -> UploadSession | None:
        """Add ``n`` to the chunk set (set semantics; a ``pending`` session becomes ``in_progress``).

        Ignored for a session that no longer accepts chunks. Returns the session afterwards, or
        ``None`` if it does not exist.
        """
        ...

    async def list_chunks(self, upload_id: str) -> list[StoredChunk]: ...

    async def claim_finalize(
        self, upload_id: str, worker: str, now: datetime, lease_until: datetime
    ) -> UploadSession | None:
        """Move a full ``in_progress`` session to ``finalizing`` under ``worker``'s lease, counting
        one more finalize attempt.

        Also takes over a ``finalizing`` session whose lease has run out. Exactly one concurrent
        caller wins; the others get ``None``.
        """
        ...

    async def renew_lease(self, upload_id: str, worker: str, lease_until: datetime) -> bool: ...

    async def release_lease(self, upload_id: str, worker: str, now: datetime) -> None:
        """Let ``worker``'s lease lapse at once, so a retry can take the session over without waiting."""
        ...

    async def fail(self, upload_id: str, worker: str, reason: str, now: datetime) -> bool:
        """``finalizing`` → ``failed`` with ``reason``, if ``worker`` still holds the lease; releases
        the session's reserved bytes."""
        ...

    async def complete(self, upload_id: str, worker: str, file_id: str, now: datetime) -> bool:
        """``finalizing`` → ``completed`` with ``file_id``, if ``worker`` still holds the lease."""
        ...

    async def cancel(self, upload_id: str, now: datetime) -> UploadSession | None:
        """``pending``/``in_progress`` → ``cancelled`` (releasing its reserved bytes); returns the
        session afterwards."""
        ...

    async def due_to_expire(self, now: datetime, limit: int) -> list[UploadSession]:
        """Sessions still accepting chunks whose ``expires_at`` has passed, soonest first."""
        ...

    async def expire(self, upload_id: str, now: datetime) -> bool:
        """``pending``/``in_progress`` past ``expires_at`` → ``expired`` (releasing its reserved bytes)."""
        ...

    async def needing_cleanup(self, limit: int) -> list[UploadSession]:
        """Finished sessions whose chunks have not been deleted yet."""
        ...

    async def mark_cleaned(self, upload_id: str, now: datetime) -> None: ...

    async def stalled(self, now: datetime, idle_since: datetime, limit: int) -> list[UploadSession]:
        """Sessions that should be moving but are not, without changing them.

        Still accepting chunks, idle since ``idle_since``, and either holding stored chunks whose
        storage events were never recorded or holding every chunk; or ``finalizing`` with a
        lapsed lease.
        """
        ...


class FileStore(Protocol):
    async def create_if_absent(self, record: FileRecord) -> FileRecord:
        """Insert ``record`` unless a file with its id exists; return what is stored."""
        ...

    async def get(self, file_id: str) -> FileRecord | None: ...

    async def list_by_owner(self, owner_id: str, limit: int, cursor: str | None) -> FilePage:
        """Newest first. ``cursor`` comes from a previous page; raises ``ValueError`` if malformed."""
        ...

    async def delete(self, file_id: str, owner_id: str) -> FileRecord | None:
        """Delete the file row if ``owner_id`` owns it, releasing its size from the owner's usage;
        return the deleted row."""
        ...


class MetadataStore(Protocol):
    """The bundle of metadata stores one backend provides, plus its health check."""

    @property
    def users(self) -> UserStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def uploads(self) -> UploadStore: ...

    @property
    def files(self) -> FileStore: ...

    async def ping(self) -> None:
        """Raise if the store cannot serve requests."""
        ...


# --- bytes -----------------------------------------------------------------------------------


class ChunkSizeMismatch(Exception):
    """The body was shorter or longer than the chunk must be."""

    def __init__(self, expected: int, received: int, *, too_large: bool) -> None:
        super().__init__(f"expected {expected} bytes, received {'more than ' if too_large else ''}{received}")
        self.expected = expected
        self.received = received
        self.too_large = too_large


class ChunkHashMismatch(Exception):
    """The body's SHA-256 is not the one the client announced."""

    def __init__(self, actual: str) -> None:
        super().__init__(f"body has SHA-256 {actual}")
        self.actual = actual


class ChunkConflict(Exception):
    """The chunk is already stored with different content."""


class StorageFull(Exception):
    """The backend has no room for the bytes (nothing was stored)."""


class UploadRemoved(Exception):
    """The upload's chunks were deleted while a chunk was arriving (the session has ended)."""


class ChunkMissing(Exception):
    """A chunk needed for assembly is not stored."""

    def __init__(self, n: int) -> None:
        super().__init__(f"chunk {n} is missing")
        self.n = n


class ChunkWrongSize(Exception):
    """A stored chunk does not have the length its place in the file requires."""

    def __init__(self, n: int, expected: int, actual: int) -> None:
        super().__init__(f"chunk {n} has {actual} bytes, not {expected}")
        self.n = n


class ByteRange(msgspec.Struct, frozen=True):
    start: int
    end: int
    """Inclusive, as in HTTP ``Range``."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class BlobStore(Protocol):
    """Chunk objects ``uploads/{upload_id}/chunk_{n}`` and file objects ``files/{file_id}``.

    Storing a chunk (also storing again one that is already there) makes the backend emit an S3
    ``ObjectCreated`` event for its key, so a lost event is made good by sending the chunk again.
    """

    async def put_chunk(self, upload_id: str, n: int, body: AsyncIterator[bytes], size: int, sha256: str) -> bool:
        """Stream ``body`` into chunk ``n``, atomically and only if it is exactly ``size`` bytes
        with SHA-256 ``sha256``. Returns ``False`` if that very chunk was already stored.

        Raises :class:`ChunkSizeMismatch`, :class:`ChunkHashMismatch`, :class:`ChunkConflict`,
        :class:`StorageFull` or :class:`UploadRemoved`; nothing is stored then.
        """
        ...

    async def chunk_sha256(self, upload_id: str, n: int) -> str:
        """Hash a stored chunk (used when its hash was not recorded); :class:`ChunkMissing` if absent."""
        ...

    async def list_chunks(self, upload_id: str) -> list[int]:
        """The chunk numbers stored for ``upload_id``."""
        ...

    async def delete_chunk(self, upload_id: str, n: int) -> None:
        """Delete one chunk, if it is there."""
        ...

    async def assemble(self, upload_id: str, file_id: str, chunk_size: int, file_size: int) -> int:
        """Make ``files/{file_id}`` from the chunks of a ``file_size``-byte file cut into ``chunk_size``
        pieces and return its size. Idempotent.

        Raises :class:`ChunkMissing` or :class:`ChunkWrongSize` (permanent: retrying cannot help).
        """
        ...

    async def file_size(self, file_id: str) -> int | None: ...

    def read_file(self, file_id: str, byte_range: ByteRange | None) -> AsyncIterator[bytes]:
        """Stream a file (or one range of it)."""
        ...

    async def delete_file(self, file_id: str) -> None: ...

    async def delete_upload(self, upload_id: str) -> None:
        """Delete every chunk of ``upload_id`` (the ``uploads/{upload_id}/`` prefix)."""
        ...

    async def upload_prefixes(self) -> list[str]:
        """Upload ids that have objects under ``uploads/`` (for sweeping orphans)."""
        ...


class QueueMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    receipt: str
    body: str
    receive_count: int


class EventQueue(Protocol):
    """At-least-once queue of storage events (SQS semantics)."""

    async def receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[QueueMessage]:
        """Long-poll for up to ``max_messages``; each stays hidden for ``visibility_timeout``.

        A message received more than the configured maximum number of times goes to the
        dead-letter store instead of being returned.
        """
        ...

    async def delete(self, receipt: str) -> None: ...

    async def extend_visibility(self, receipt: str, seconds: float) -> None:
        """Keep a message hidden for another ``seconds`` from now."""
        ...
