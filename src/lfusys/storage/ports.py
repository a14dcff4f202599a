"""The in-process interfaces between domain code and storage backends.

Domain modules depend only on these Protocols; their records live with their domain
(``auth/records.py``, ``sessions/records.py``, ``files/records.py``). Every backend (``storage/local``,
``storage/memory``, later ``storage/aws``) provides adapters that pass the shared contract suites in
``tests/contract``. The shapes follow the strictest backend, S3 and DynamoDB:

- a chunk is stored "first writer wins" (S3: ``PutObject`` with ``If-None-Match: *``, then the stored
  SHA-256 checksum tells a repeat from a conflict);
- a file is assembled like an S3 multipart upload (start, copy each chunk in as a part and keep its
  ETag, complete from the kept ETags, or abort), so another worker can resume it;
- quota is a conditional reserve/release on a per-owner usage record, not a sum;
- one record per chunk, listed in pages;
- sweeps are driven by metadata with limits, and reads never write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import msgspec

from lfusys.auth.records import ApiToken, RefreshOutcome, RefreshToken, User
from lfusys.files.ranges import ByteRange
from lfusys.files.records import FilePage, FileRecord
from lfusys.files.signing import SignedLinks
from lfusys.sessions.records import SessionPage, StoredChunk, UploadSession, UploadStatus
from lfusys.storage.objects import ChunkStored
from lfusys.tus.records import TusUpload

# --- accounts ------------------------------------------------------------------------------------


class UserStore(Protocol):
    async def create(self, user: User) -> None:
        """Insert ``user``; raise :class:`~lfusys.auth.records.EmailTaken` if its email exists (one
        winner under races)."""
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    # Sign-in identities: ``(provider, provider_user_id)``, e.g. ``("github", "583231")``, each linked
    # to exactly one user; a user may have several (one per provider, or more).

    async def create_with_identity(self, user: User, provider: str, provider_user_id: str) -> None:
        """Insert ``user`` linked to the identity in one atomic step (a first sign-in through a provider),
        so no crash leaves the user without it. Raise :class:`~lfusys.auth.records.IdentityTaken` if the
        identity is linked already (checked first: its user is the one to sign in), else
        :class:`~lfusys.auth.records.EmailTaken` if the email exists; nothing is stored then."""
        ...

    async def link_identity(self, user_id: str, provider: str, provider_user_id: str, now: datetime) -> str:
        """Link the identity to the existing user ``user_id`` unless it is linked already; return the id of
        the user it is linked to afterwards (the first writer wins: concurrent callers all get the winner)."""
        ...

    async def get_by_identity(self, provider: str, provider_user_id: str) -> User | None: ...

    async def identities(self, user_id: str) -> list[str]:
        """The providers of the user's identities, sorted (once per identity). DynamoDB answers from an
        index, so an identity linked a moment ago may be missing yet."""
        ...


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


class ApiTokenStore(Protocol):
    """Personal API tokens, found by id (the id is part of the token, so a check is one consistent read
    on every backend: a revoked token is refused at once, on every replica)."""

    async def add(self, token: ApiToken) -> None: ...

    async def get(self, token_id: str) -> ApiToken | None: ...

    async def list_for(self, user_id: str) -> list[ApiToken]:
        """The user's tokens that are not revoked, newest first."""
        ...

    async def revoke(self, user_id: str, token_id: str, now: datetime) -> bool:
        """Revoke the user's token; False if the user has no such token (or it was revoked already)."""
        ...

    async def mark_used(self, token_id: str, now: datetime) -> None:
        """Remember when the token was last used."""
        ...


# --- upload sessions and files -------------------------------------------------------------------


class TusStore(Protocol):
    """tus uploads (:class:`~lfusys.tus.records.TusUpload`): the offset moves only under a claim, taken
    with a conditional write, so two requests writing at one offset on two replicas cannot both win."""

    async def create(self, upload: TusUpload) -> None: ...

    async def get(self, upload_id: str) -> TusUpload | None: ...

    async def claim(self, upload_id: str, offset: int, writer: str, until: datetime, now: datetime) -> TusUpload | None:
        """Make ``writer`` the one writing at ``offset``, if that is the upload's offset and nobody else
        writes there (or their claim lapsed by ``now``); the upload as claimed, else ``None``."""
        ...

    async def advance(self, upload_id: str, writer: str, offset: int, new_offset: int, until: datetime) -> bool:
        """Move the offset from ``offset`` to ``new_offset`` and renew the claim until ``until``, if
        ``writer`` still holds it; whether it did."""
        ...

    async def release(self, upload_id: str, writer: str) -> None:
        """End ``writer``'s claim, if it still holds it."""
        ...

    async def set_length(self, upload_id: str, length: int) -> bool:
        """Give a deferred upload its length (at most the one it has, its reservation): whether the upload
        now has that length and is no longer deferred (also when it already was)."""
        ...

    async def delete(self, upload_id: str) -> None: ...


class UploadStore(Protocol):
    """Upload sessions and their per-chunk records, with the conditional steps of the lifecycle.

    Each owner has a usage record: the declared size of every unfinished session plus the size of
    every file. Creating a session reserves its size in the same atomic step as the insert; a
    session that ends without a file (cancelled, expired, failed) releases it in the same step as
    its status change; deleting a file releases its size (:meth:`FileStore.delete`).
    """

    async def create(self, session: UploadSession, quota: int | None) -> None:
        """Insert ``session`` and reserve its size; raise
        :class:`~lfusys.sessions.records.QuotaExceeded` (and store nothing) if the owner's usage would
        then exceed ``quota`` (``None``: no limit)."""
        ...

    async def get(self, upload_id: str) -> UploadSession | None: ...

    async def set_size(self, upload_id: str, file_size: int, total_chunks: int) -> UploadSession | None:
        """Fix the size of a session made before its size was known (its ``file_size`` was a
        reservation): ``file_size`` is at most the present one (``ValueError`` otherwise), and the owner's
        usage shrinks by the difference in the same step. Repeating it with the same size changes nothing.
        Only while the session accepts chunks; returns it as it is afterwards (``None`` if it is unknown
        or no longer accepts chunks)."""
        ...

    async def list_unfinished(self, owner_id: str, limit: int, cursor: str | None) -> SessionPage:
        """Sessions still accepting chunks or being finalized, newest first, up to ``limit`` a page.

        ``cursor`` comes from the previous page (``ValueError`` if it is not such a cursor). A walk
        through the pages lists every session that stayed unfinished throughout exactly once, whatever
        is created or finished meanwhile (newer sessions appear on a new walk)."""
        ...

    async def usage(self, owner_id: str) -> int:
        """Bytes the owner holds: unfinished sessions' declared sizes plus files."""
        ...

    async def save_chunk_hash(self, upload_id: str, n: int, sha256: str, now: datetime) -> UploadSession | None:
        """Remember the verified hash of stored chunk ``n`` (first hash wins), if the session still
        accepts chunks and has not expired by ``now``; return the session as it is afterwards
        (``None`` if there is none), so the caller learns in the same step whether it has ended."""
        ...

    async def record_chunks(self, chunks: Sequence[ChunkStored], now: datetime) -> list[UploadSession]:
        """Add each chunk to its session's chunk set (set semantics; a ``pending`` session becomes
        ``in_progress``), in as few steps as the backend can.

        A chunk of a session that no longer accepts chunks, or out of its range, is ignored. Returns
        every named session that exists, as it is afterwards.
        """
        ...

    async def list_chunks(self, upload_id: str, after: int = 0, limit: int = 1000) -> list[StoredChunk]:
        """Up to ``limit`` chunk records with ``n > after``, ascending (page on with the last ``n``)."""
        ...

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

    async def set_assembly(self, upload_id: str, worker: str, assembly_id: str | None) -> bool:
        """Keep the id of the file's assembly on the session (``None`` forgets it, and every part
        recorded for it), if ``worker`` holds the lease."""
        ...

    async def record_parts(self, upload_id: str, parts: list[Part]) -> None:
        """Keep the ETag of each chunk copied into the assembly (part ``n`` is chunk ``n``)."""
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

    async def by_status(self, status: UploadStatus, limit: int) -> list[UploadSession]:
        """Sessions of every owner that are ``failed`` (the earliest failure first, by ``updated_at``) or
        ``finalizing`` (the earliest lease expiry first), up to ``limit``, without changing them; an
        operator's view of what is stuck. ``ValueError`` for another status (no backend indexes those).
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


# --- bytes ---------------------------------------------------------------------------------------


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


class AssemblyLost(Exception):
    """The assembly named by an id is gone (an S3 multipart upload aborted or expired): start anew."""


class BackendNotReady(Exception):
    """The backend's resources are missing (the message says what to run), so nothing can start."""


class Part(msgspec.Struct, frozen=True):
    number: int
    etag: str


class ChunkSpan(msgspec.Struct, frozen=True):
    """Chunk ``n`` and the exact length it must have."""

    n: int
    size: int


class Piece(msgspec.Struct, frozen=True):
    """Bytes of one upload that go into an assembled file: its chunk ``n``, or (``n`` 0) its tail that
    ends at ``tail_end``; ``size`` is the exact length they must have."""

    upload_id: str
    size: int
    n: int = 0
    tail_end: int = 0


class PartSource(msgspec.Struct, frozen=True):
    """Part ``number`` of an assembly and the pieces it is made of, in order."""

    number: int
    pieces: tuple[Piece, ...]

    @property
    def size(self) -> int:
        return sum(piece.size for piece in self.pieces)


MIN_PART_SIZE = 5 * 1024 * 1024
"""The least size of every part of an assembly but the last (S3's rule, kept by every store)."""


def group_pieces(pieces: Sequence[Piece], min_part_size: int = MIN_PART_SIZE) -> list[PartSource]:
    """The parts an assembly of ``pieces`` (in order) is made of: a piece of at least ``min_part_size``
    is a part of its own; smaller ones are joined with the pieces after them until the part is that
    large (the last part may be smaller)."""
    parts: list[PartSource] = []
    pending: list[Piece] = []
    for piece in pieces:
        pending.append(piece)
        if sum(p.size for p in pending) >= min_part_size:
            parts.append(PartSource(len(parts) + 1, tuple(pending)))
            pending = []
    if pending:
        parts.append(PartSource(len(parts) + 1, tuple(pending)))
    return parts


class BlobStore(Protocol):
    """Chunk objects ``uploads/{upload_id}/chunk_{n}`` and file objects ``files/{file_id}``.

    Storing a chunk (also storing again one that is already there) makes the backend emit an S3
    ``ObjectCreated`` event for its key, so a lost event is made good by sending the chunk again.
    """

    async def put_chunk(
        self, upload_id: str, n: int, body: AsyncIterator[bytes], size: int, sha256: str, *, digest_known: bool = False
    ) -> bool:
        """Stream ``body`` into chunk ``n``, atomically and only if it is exactly ``size`` bytes
        with SHA-256 ``sha256``. The first writer wins: returns ``False`` if that very chunk was
        already stored. With ``digest_known`` the caller computed ``sha256`` from these very bytes in
        this process, and the store does not hash them again (S3 still checks it on its side).

        Raises :class:`ChunkSizeMismatch`, :class:`ChunkHashMismatch`, :class:`ChunkConflict`,
        :class:`StorageFull` or :class:`UploadRemoved`; nothing is stored then.
        """
        ...

    async def chunk_sha256(self, upload_id: str, n: int) -> str:
        """The SHA-256 of a stored chunk (used when its hash was not recorded); :class:`ChunkMissing`."""
        ...

    async def list_chunks(self, upload_id: str) -> list[int]:
        """The chunk numbers stored for ``upload_id``, ascending."""
        ...

    async def chunk_traceparent(self, upload_id: str, n: int) -> str | None:
        """The trace context kept with chunk ``n`` by the request that stored it, if this store keeps
        one with its objects (S3: object metadata). The local and memory stores put it in the storage
        event instead (:attr:`ChunkStored.traceparent`) and answer None."""
        ...

    async def delete_chunk(self, upload_id: str, n: int) -> None:
        """Delete one chunk, if it is there."""
        ...

    async def delete_upload(self, upload_id: str) -> None:
        """Delete every chunk of ``upload_id`` (the ``uploads/{upload_id}/`` prefix), and its tails."""
        ...

    # A tus upload's tail: the bytes past its last whole chunk, one object per offset it ends at
    # (``uploads/{upload_id}/tail_{offset}``: never overwritten, so no two writers meet on one).
    # Storing one emits no event the worker acts on.

    async def put_tail(self, upload_id: str, offset: int, data: bytes) -> None:
        """Store the tail that ends at ``offset``, atomically (whole or not at all); :class:`StorageFull`."""
        ...

    async def get_tail(self, upload_id: str, offset: int) -> bytes:
        """The tail that ends at ``offset``; :class:`ChunkMissing` (with ``n`` 0) if it is not there."""
        ...

    async def delete_tail(self, upload_id: str, offset: int) -> None:
        """Delete the tail that ends at ``offset``, if it is there."""
        ...

    # Assembly, shaped like an S3 multipart upload. Every step may be repeated, by any worker.

    async def start_assembly(self, file_id: str) -> str:
        """Begin assembling ``files/{file_id}``; return the assembly's id."""
        ...

    async def copy_parts(self, file_id: str, assembly_id: str, upload_id: str, chunks: list[ChunkSpan]) -> list[Part]:
        """Copy each chunk of ``upload_id`` into the assembly as the part of the same number (as many
        at once as the backend does well); return the parts in the order given.

        Raises :class:`ChunkMissing`, :class:`ChunkWrongSize` (a chunk of another length than its
        span says) or :class:`AssemblyLost`.
        """
        ...

    async def copy_pieces(self, file_id: str, assembly_id: str, parts: list[PartSource]) -> list[Part]:
        """Make each part of the assembly from its pieces (chunks and tails of any uploads): a part of
        one piece is that object copied as it is (S3 ``UploadPartCopy``, a link on disk); a part of
        several is written from their bytes joined. Returns the parts in the order given; repeating it
        is harmless. The caller keeps every part but the last at least :data:`MIN_PART_SIZE`
        (:func:`group_pieces`).

        Raises :class:`ChunkMissing` (``n`` 0 for a tail), :class:`ChunkWrongSize` (a piece of another
        length than it says) or :class:`AssemblyLost`.
        """
        ...

    async def complete_assembly(self, file_id: str, assembly_id: str, parts: list[Part]) -> int:
        """Make ``files/{file_id}`` from ``parts`` (every part, in order) and return its size.

        Raises :class:`AssemblyLost` unless the file is already complete.
        """
        ...

    async def abort_assembly(self, file_id: str, assembly_id: str) -> None:
        """Throw away an unfinished assembly and its parts (harmless if it is already gone)."""
        ...

    async def copy_chunk_as_file(self, file_id: str, upload_id: str, chunk: ChunkSpan) -> int:
        """Make ``files/{file_id}`` from one chunk alone (a one-chunk file needs no assembly: S3
        ``CopyObject``); return its size. May be repeated.

        Raises :class:`ChunkMissing` or :class:`ChunkWrongSize`.
        """
        ...

    async def file_size(self, file_id: str) -> int | None:
        """The size of a complete file, or ``None`` if there is none."""
        ...

    def read_file(self, file_id: str, byte_range: ByteRange | None) -> AsyncIterator[bytes]:
        """Stream a file (or one range of it)."""
        ...

    async def download_url(self, file_id: str, file_name: str, file_type: str, expires_at: datetime) -> str:
        """A URL that serves the file's bytes as ``file_name`` until ``expires_at``, to anyone holding it
        (S3: a presigned GET; the local stores: the app's own signed content URL, relative)."""
        ...

    async def delete_file(self, file_id: str) -> None: ...


async def copy_as_one_part(store: BlobStore, file_id: str, upload_id: str, chunk: ChunkSpan) -> int:
    """:meth:`BlobStore.copy_chunk_as_file` for a store with no cheaper way: an assembly of one part."""
    assembly_id = await store.start_assembly(file_id)
    try:
        parts = await store.copy_parts(file_id, assembly_id, upload_id, [chunk])
        return await store.complete_assembly(file_id, assembly_id, parts)
    finally:
        await store.abort_assembly(file_id, assembly_id)  # nothing left once completed


# --- storage events ------------------------------------------------------------------------------


class QueueMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    receipt: str
    body: str
    receive_count: int


class QueueDepth(msgspec.Struct, frozen=True, kw_only=True):
    """How many messages a queue holds (approximate on SQS)."""

    visible: int
    """Waiting to be received."""
    in_flight: int
    """Received and not yet acknowledged (hidden)."""
    dead_letters: int


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    body: str
    receive_count: int
    dead_at: float
    """Unix time."""


class EventQueue(Protocol):
    """At-least-once queue of storage events (SQS semantics)."""

    async def send(self, body: str) -> None:
        """Put a message on the queue (S3 sends chunk events by itself; the local stores call this)."""
        ...

    async def receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[QueueMessage]:
        """Long-poll for up to ``max_messages``; each stays hidden for ``visibility_timeout``.

        A message received more than the configured maximum number of times goes to the
        dead-letter store instead of being returned. A receive that is cancelled (a worker stopping)
        leaves no message hidden: whatever it had taken is visible again at once.
        """
        ...

    async def delete(self, *receipts: str) -> None:
        """Acknowledge handled messages (SQS: ``DeleteMessageBatch`` for up to ten)."""
        ...

    async def extend_visibility(self, receipt: str, seconds: float) -> None:
        """Keep a message hidden for another ``seconds`` from now (0: visible again at once)."""
        ...

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Messages that were given up on, oldest first."""
        ...

    async def depth(self) -> QueueDepth:
        """What the queue and its dead letters hold now (for metrics)."""
        ...

    async def redrive(self, ids: Sequence[str] | None) -> int:
        """Put dead letters back on the queue as new messages (receive count 0), every one or those
        whose :attr:`DeadLetter.id` is in ``ids`` (unknown ids are skipped); return how many. A message
        is on the queue before it leaves the dead letters, so none is lost (SQS: one may be on both for
        a moment, and is then handled twice)."""
        ...


# --- short-lived shared state --------------------------------------------------------------------


class WindowCount(msgspec.Struct, frozen=True):
    count: int
    """Events in the current window, this one included."""
    resets_in: timedelta
    """Until the window ends and the count starts again."""


class KVUnavailable(Exception):
    """The KV store did not answer in time or at all; callers decide whether to fail open (rate
    limits, caches) or closed (one-time state)."""


class KV(Protocol):
    """Small values with lifetimes, shared by every process of a deployment (rate limits, caches,
    one-time state). Keys are plain strings chosen by the caller.

    Every method may raise :class:`KVUnavailable` (a remote store that is down or too slow); the
    in-process stores never do.
    """

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: timedelta) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, ttl: timedelta) -> bool:
        """Store ``value`` only if ``key`` holds nothing; ``True`` if this call stored it."""
        ...

    async def get_and_delete(self, key: str) -> bytes | None:
        """Take the value away: of concurrent callers, exactly one gets it."""
        ...

    async def delete(self, key: str) -> None: ...

    async def hit(self, key: str, window: timedelta) -> WindowCount:
        """Count one more event in the fixed window that started with the key's first event (the
        counter and its expiry are set in one atomic step)."""
        ...


# --- the bundle ----------------------------------------------------------------------------------

HealthCheck = Callable[[], Awaitable[None]]
"""Returns if a dependency answers, raises otherwise."""


@dataclass(frozen=True, kw_only=True)
class Backend:
    """Everything one backend provides, as :func:`lfusys.storage.backend.open_backend` hands it out."""

    name: str
    description: str
    """What the backend keeps where, in a line, said at start-up."""
    users: UserStore
    tokens: TokenStore
    api_tokens: ApiTokenStore
    uploads: UploadStore
    tus: TusStore
    files: FileStore
    blobs: BlobStore
    queue: EventQueue
    kv: KV
    links: SignedLinks | None
    """The app's own signed download links, when the app serves the bytes itself."""
    checks: Mapping[str, HealthCheck]
    """One check per dependency, by the name readiness reports it under."""
