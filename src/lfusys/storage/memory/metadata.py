"""Upload sessions, their chunk records, files and per-owner usage in this process's memory.

Every method does its reading and writing without awaiting in between, so on the one event loop
each is atomic, as each local store method is one SQLite transaction.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec
from msgspec.structs import replace

from lfusys.auth.records import ApiToken, User
from lfusys.clock import Clock
from lfusys.files.records import FilePage, FileRecord
from lfusys.sessions.records import QuotaExceeded, SessionPage, StoredChunk, UploadSession, UploadStatus
from lfusys.storage.cursors import decode_cursor, encode_cursor
from lfusys.storage.objects import ChunkStored
from lfusys.storage.ports import Part

_Position = tuple[str, str]
"""Where a file sorts: its creation time as fixed-width UTC text, then its id."""


def _position(record: FileRecord | UploadSession) -> _Position:
    # The local store's text form, so cursors compare (and encode) exactly as there.
    return (record.created_at.astimezone(UTC).isoformat(timespec="microseconds"), record.id)


class FamilyRow(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    revoked_at: datetime | None = None


class TokenRow(msgspec.Struct, frozen=True, kw_only=True):
    family_id: str
    rotated_at: datetime | None = None


@dataclass(slots=True)
class _SessionRow:
    session: UploadSession
    chunks: dict[int, StoredChunk] = field(default_factory=dict)
    cleaned: bool = False


class MemoryMetadata:
    """The memory backend's metadata, as one database would hold it: the account tables (used by
    :mod:`lfusys.storage.memory.accounts`), and the upload and file stores with the usage they share."""

    def __init__(self, clock: Clock) -> None:
        # Every store method is handed the moments it needs, so the clock is not consulted here.
        del clock
        self.users: dict[str, User] = {}
        self.user_ids_by_email: dict[str, str] = {}
        self.user_ids_by_identity: dict[tuple[str, str], str] = {}
        self.api_tokens: dict[str, ApiToken] = {}
        """``(provider, provider_user_id)`` → user id."""
        self.families: dict[str, FamilyRow] = {}
        self.refresh_tokens: dict[str, TokenRow] = {}
        usage = _Usage()
        self.uploads = MemoryUploadStore(usage)
        self.files = MemoryFileStore(usage)


class _Usage:
    """Bytes per owner; an owner with none has no entry."""

    def __init__(self) -> None:
        self._bytes: dict[str, int] = {}

    def of(self, owner_id: str) -> int:
        return self._bytes.get(owner_id, 0)

    def change(self, owner_id: str, delta: int) -> None:
        total = max(self.of(owner_id) + delta, 0)
        if total:
            self._bytes[owner_id] = total
        else:
            self._bytes.pop(owner_id, None)


class MemoryUploadStore:
    """The UploadStore port over a dict of sessions, each with its chunk records."""

    def __init__(self, usage: _Usage) -> None:
        self._usage = usage
        self._rows: dict[str, _SessionRow] = {}

    def _end_without_file(self, row: _SessionRow, status: UploadStatus, now: datetime) -> None:
        """End a session without a file and release its reserved bytes, in the same step."""
        row.session = replace(row.session, status=status, lease_owner=None, lease_expires_at=None, updated_at=now)
        self._usage.change(row.session.owner_id, -row.session.file_size)

    def _held(self, upload_id: str, worker: str) -> _SessionRow | None:
        """The session if it is ``finalizing`` under ``worker``'s lease."""
        row = self._rows.get(upload_id)
        if row is None or row.session.status is not UploadStatus.FINALIZING or row.session.lease_owner != worker:
            return None
        return row

    async def create(self, session: UploadSession, quota: int | None) -> None:
        used = self._usage.of(session.owner_id)
        if quota is not None and used + session.file_size > quota:
            raise QuotaExceeded(used, quota)
        if session.id in self._rows:
            raise ValueError(f"upload {session.id} exists")
        # Progress, lease and outcome always start afresh, whatever the record handed in says.
        fresh = replace(
            session,
            stored_chunks=0,
            recorded_chunks=0,
            file_id=None,
            lease_owner=None,
            lease_expires_at=None,
            finalize_attempts=0,
            failure_reason=None,
            assembly_id=None,
        )
        self._rows[session.id] = _SessionRow(fresh)
        self._usage.change(session.owner_id, session.file_size)

    async def get(self, upload_id: str) -> UploadSession | None:
        row = self._rows.get(upload_id)
        return row.session if row else None

    async def set_size(self, upload_id: str, file_size: int, total_chunks: int) -> UploadSession | None:
        row = self._rows.get(upload_id)
        if row is None or not row.session.status.accepts_chunks:
            return None
        reserved = row.session.file_size
        if file_size > reserved:
            raise ValueError(f"upload {upload_id} reserved {reserved} bytes, not {file_size}")
        row.session = replace(row.session, file_size=file_size, total_chunks=total_chunks)
        self._usage.change(row.session.owner_id, file_size - reserved)
        return row.session

    async def list_unfinished(self, owner_id: str, limit: int, cursor: str | None) -> SessionPage:
        after = decode_cursor(cursor, 2) if cursor is not None else None
        candidates = (
            row.session
            for row in self._rows.values()
            if row.session.owner_id == owner_id
            and not row.session.status.finished
            and (after is None or _position(row.session) < after)
        )
        newest = heapq.nlargest(limit + 1, candidates, key=_position)
        sessions = newest[:limit]
        next_cursor = encode_cursor(*_position(sessions[-1])) if len(newest) > limit else None
        return SessionPage(sessions=sessions, next_cursor=next_cursor)

    async def usage(self, owner_id: str) -> int:
        return self._usage.of(owner_id)

    async def save_chunk_hash(self, upload_id: str, n: int, sha256: str, now: datetime) -> UploadSession | None:
        row = self._rows.get(upload_id)
        if row is None:
            return None
        if not row.session.status.accepts_chunks or row.session.expires_at <= now:
            return row.session
        chunk = row.chunks.get(n)
        if chunk is None:
            row.chunks[n] = StoredChunk(n=n, sha256=sha256, recorded=False)
            row.session = replace(row.session, stored_chunks=row.session.stored_chunks + 1, updated_at=now)
        elif chunk.sha256 is None:
            row.chunks[n] = replace(chunk, sha256=sha256)
        return row.session

    async def record_chunks(self, chunks: Sequence[ChunkStored], now: datetime) -> list[UploadSession]:
        for chunk in chunks:
            self._record_one(chunk, now)
        named = dict.fromkeys(chunk.upload_id for chunk in chunks)
        return [self._rows[upload_id].session for upload_id in named if upload_id in self._rows]

    def _record_one(self, stored: ChunkStored, now: datetime) -> None:
        row = self._rows.get(stored.upload_id)
        if row is None:
            return
        session, n = row.session, stored.n
        if not session.status.accepts_chunks or not 1 <= n <= session.total_chunks:
            return
        chunk = row.chunks.get(n)
        if chunk is not None and chunk.recorded:
            return
        row.chunks[n] = StoredChunk(n=n, sha256=None, recorded=True) if chunk is None else replace(chunk, recorded=True)
        row.session = replace(
            session,
            recorded_chunks=session.recorded_chunks + 1,
            stored_chunks=session.stored_chunks + int(chunk is None),
            status=UploadStatus.IN_PROGRESS,
            updated_at=now,
        )

    async def list_chunks(self, upload_id: str, after: int = 0, limit: int = 1000) -> list[StoredChunk]:
        row = self._rows.get(upload_id)
        if row is None:
            return []
        return [row.chunks[n] for n in heapq.nsmallest(limit, (n for n in row.chunks if n > after))]

    async def claim_finalize(
        self, upload_id: str, worker: str, now: datetime, lease_until: datetime
    ) -> UploadSession | None:
        row = self._rows.get(upload_id)
        if row is None:
            return None
        session = row.session
        full = session.status is UploadStatus.IN_PROGRESS and session.recorded_chunks == session.total_chunks
        lapsed = (
            session.status is UploadStatus.FINALIZING
            and session.lease_expires_at is not None
            and session.lease_expires_at < now
        )
        if not (full or lapsed):
            return None
        row.session = replace(
            session,
            status=UploadStatus.FINALIZING,
            lease_owner=worker,
            lease_expires_at=lease_until,
            updated_at=now,
            finalize_attempts=session.finalize_attempts + 1,
        )
        return row.session

    async def renew_lease(self, upload_id: str, worker: str, lease_until: datetime) -> bool:
        row = self._held(upload_id, worker)
        if row is None:
            return False
        row.session = replace(row.session, lease_expires_at=lease_until)
        return True

    async def release_lease(self, upload_id: str, worker: str, now: datetime) -> None:
        row = self._held(upload_id, worker)
        if row is not None:
            # Just before now, so "lease_expires_at < now" holds for the very next claim.
            row.session = replace(row.session, lease_expires_at=now - timedelta(microseconds=1))

    async def set_assembly(self, upload_id: str, worker: str, assembly_id: str | None) -> bool:
        row = self._held(upload_id, worker)
        if row is None:
            return False
        row.session = replace(row.session, assembly_id=assembly_id)
        if assembly_id is None:
            row.chunks = {n: replace(chunk, part_etag=None) for n, chunk in row.chunks.items()}
        return True

    async def record_parts(self, upload_id: str, parts: list[Part]) -> None:
        row = self._rows.get(upload_id)
        if row is None:
            return
        for part in parts:
            chunk = row.chunks.get(part.number)
            if chunk is not None:
                row.chunks[part.number] = replace(chunk, part_etag=part.etag)

    async def fail(self, upload_id: str, worker: str, reason: str, now: datetime) -> bool:
        row = self._held(upload_id, worker)
        if row is None:
            return False
        self._end_without_file(row, UploadStatus.FAILED, now)
        row.session = replace(row.session, failure_reason=reason)
        return True

    async def complete(self, upload_id: str, worker: str, file_id: str, now: datetime) -> bool:
        row = self._held(upload_id, worker)
        if row is None:
            return False
        row.session = replace(
            row.session,
            status=UploadStatus.COMPLETED,
            file_id=file_id,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        return True

    async def cancel(self, upload_id: str, now: datetime) -> UploadSession | None:
        row = self._rows.get(upload_id)
        if row is None:
            return None
        if row.session.status.accepts_chunks:
            self._end_without_file(row, UploadStatus.CANCELLED, now)
        return row.session

    async def due_to_expire(self, now: datetime, limit: int) -> list[UploadSession]:
        due = (
            row.session
            for row in self._rows.values()
            if row.session.status.accepts_chunks and row.session.expires_at <= now
        )
        return heapq.nsmallest(limit, due, key=lambda session: session.expires_at)

    async def expire(self, upload_id: str, now: datetime) -> bool:
        row = self._rows.get(upload_id)
        if row is None or not row.session.status.accepts_chunks or row.session.expires_at > now:
            return False
        self._end_without_file(row, UploadStatus.EXPIRED, now)
        return True

    async def needing_cleanup(self, limit: int) -> list[UploadSession]:
        finished = (row.session for row in self._rows.values() if not row.cleaned and row.session.status.finished)
        return heapq.nsmallest(limit, finished, key=lambda session: session.updated_at)

    async def mark_cleaned(self, upload_id: str, now: datetime) -> None:
        row = self._rows.get(upload_id)
        if row is not None:
            row.cleaned = True

    async def stalled(self, now: datetime, idle_since: datetime, limit: int) -> list[UploadSession]:
        idle: list[UploadSession] = []
        lapsed: list[UploadSession] = []
        for row in self._rows.values():
            session = row.session
            if session.status.accepts_chunks:
                if session.updated_at < idle_since and (
                    session.stored_chunks > session.recorded_chunks or session.recorded_chunks == session.total_chunks
                ):
                    idle.append(session)
            elif (
                session.status is UploadStatus.FINALIZING
                and session.lease_expires_at is not None
                and session.lease_expires_at < now
            ):
                lapsed.append(session)
        return (idle + lapsed)[:limit]

    async def by_status(self, status: UploadStatus, limit: int) -> list[UploadSession]:
        sessions = (row.session for row in self._rows.values() if row.session.status is status)
        if status is UploadStatus.FAILED:
            return heapq.nsmallest(limit, sessions, key=lambda session: (session.updated_at, session.id))
        if status is UploadStatus.FINALIZING:
            return heapq.nsmallest(limit, sessions, key=lambda session: session.lease_expires_at or session.updated_at)
        raise ValueError(f"sessions are not listed by status {status.value}")


# --- files ---------------------------------------------------------------------------------------


class MemoryFileStore:
    """The FileStore port over a dict of file records, sharing the usage record with the uploads."""

    def __init__(self, usage: _Usage) -> None:
        self._usage = usage
        self._records: dict[str, FileRecord] = {}

    async def create_if_absent(self, record: FileRecord) -> FileRecord:
        return self._records.setdefault(record.id, record)

    async def get(self, file_id: str) -> FileRecord | None:
        return self._records.get(file_id)

    async def list_by_owner(self, owner_id: str, limit: int, cursor: str | None) -> FilePage:
        after = decode_cursor(cursor, 2) if cursor is not None else None
        candidates = (
            record
            for record in self._records.values()
            if record.owner_id == owner_id and (after is None or _position(record) < after)
        )
        newest = heapq.nlargest(limit + 1, candidates, key=_position)
        records = newest[:limit]
        next_cursor = encode_cursor(*_position(records[-1])) if len(newest) > limit else None
        return FilePage(files=records, next_cursor=next_cursor)

    async def delete(self, file_id: str, owner_id: str) -> FileRecord | None:
        record = self._records.get(file_id)
        if record is None or record.owner_id != owner_id:
            return None
        del self._records[file_id]
        self._usage.change(owner_id, -record.size)
        return record
