"""SQLite adapter for upload sessions and their per-chunk records.

Every method is one operation in the database thread (see :mod:`lfusys.storage.local.database`).

The owner's list and the janitor's questions each name their partial index (``INDEXED BY``) and
repeat its WHERE clause word for word: SQLite uses a partial index only for a query that says what
the index's WHERE clause says, and ``INDEXED BY`` turns a query that could not use it into an error
instead of a silent scan of every upload ever made.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from lfusys.sessions.records import QuotaExceeded, SessionPage, StoredChunk, UploadSession, UploadStatus
from lfusys.storage.cursors import decode_cursor, encode_cursor
from lfusys.storage.local.database import Database, db_time, from_db_time
from lfusys.storage.local.usage import change_usage
from lfusys.storage.objects import ChunkStored
from lfusys.storage.ports import Part

_ACCEPTING = (UploadStatus.PENDING.value, UploadStatus.IN_PROGRESS.value)
_FINALIZING = UploadStatus.FINALIZING.value


def _session(row: sqlite3.Row) -> UploadSession:
    lease = row["lease_expires_at"]
    return UploadSession(
        id=row["id"],
        owner_id=row["owner_id"],
        file_name=row["file_name"],
        file_type=row["file_type"],
        file_size=row["file_size"],
        chunk_size=row["chunk_size"],
        total_chunks=row["total_chunks"],
        status=UploadStatus(row["status"]),
        created_at=from_db_time(row["created_at"]),
        updated_at=from_db_time(row["updated_at"]),
        expires_at=from_db_time(row["expires_at"]),
        stored_chunks=row["stored_chunks"],
        recorded_chunks=row["recorded_chunks"],
        file_id=row["file_id"],
        lease_owner=row["lease_owner"],
        lease_expires_at=from_db_time(lease) if lease else None,
        finalize_attempts=row["finalize_attempts"],
        failure_reason=row["failure_reason"],
        assembly_id=row["assembly_id"],
        sources=tuple(row["sources"].split()),
    )


def _fetch_session(connection: sqlite3.Connection, upload_id: str) -> UploadSession | None:
    row = connection.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
    return _session(row) if row else None


def _sessions(connection: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[UploadSession]:
    return [_session(row) for row in connection.execute(sql, params).fetchall()]


def _end_without_file(
    connection: sqlite3.Connection, upload_id: str, status: UploadStatus, now: datetime, where: str, *params: object
) -> bool:
    """Move a session to a status that ends it without a file, if ``where`` holds, and release its
    reserved bytes in the same transaction."""
    # `where` is one of this module's own literal conditions; values go in as parameters.
    sql = f"UPDATE uploads SET status = ?, lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE id = ? AND {where} RETURNING owner_id, file_size"  # noqa: S608, E501
    row = connection.execute(sql, (status.value, db_time(now), upload_id, *params)).fetchone()
    if row is None:
        return False
    change_usage(connection, row["owner_id"], -row["file_size"])
    return True


def _record_one(connection: sqlite3.Connection, chunk: ChunkStored, now: datetime) -> None:
    session = connection.execute("SELECT status, total_chunks FROM uploads WHERE id = ?", (chunk.upload_id,)).fetchone()
    if session is None or session["status"] not in _ACCEPTING or not 1 <= chunk.n <= session["total_chunks"]:
        return
    existing = connection.execute(
        "SELECT recorded_at FROM upload_chunks WHERE upload_id = ? AND n = ?", (chunk.upload_id, chunk.n)
    ).fetchone()
    if existing is not None and existing["recorded_at"] is not None:
        return
    if existing is None:
        connection.execute(
            "INSERT INTO upload_chunks (upload_id, n, recorded_at) VALUES (?, ?, ?)",
            (chunk.upload_id, chunk.n, db_time(now)),
        )
    else:
        connection.execute(
            "UPDATE upload_chunks SET recorded_at = ? WHERE upload_id = ? AND n = ?",
            (db_time(now), chunk.upload_id, chunk.n),
        )
    connection.execute(
        "UPDATE uploads SET recorded_chunks = recorded_chunks + 1, stored_chunks = stored_chunks + ?,"
        " status = ?, updated_at = ? WHERE id = ?",
        (int(existing is None), UploadStatus.IN_PROGRESS.value, db_time(now), chunk.upload_id),
    )


class SqliteUploadStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(self, session: UploadSession, quota: int | None) -> None:
        def create(connection: sqlite3.Connection) -> None:
            row = connection.execute("SELECT bytes FROM usage WHERE owner_id = ?", (session.owner_id,)).fetchone()
            used = int(row["bytes"]) if row else 0
            if quota is not None and used + session.file_size > quota:
                raise QuotaExceeded(used, quota)
            connection.execute(
                "INSERT INTO uploads (id, owner_id, file_name, file_type, file_size, chunk_size, total_chunks,"
                " status, created_at, updated_at, expires_at, sources) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    session.owner_id,
                    session.file_name,
                    session.file_type,
                    session.file_size,
                    session.chunk_size,
                    session.total_chunks,
                    session.status.value,
                    db_time(session.created_at),
                    db_time(session.updated_at),
                    db_time(session.expires_at),
                    " ".join(session.sources),
                ),
            )
            change_usage(connection, session.owner_id, session.file_size)

        await self._db.transaction(create)

    async def get(self, upload_id: str) -> UploadSession | None:
        return await self._db.read(lambda connection: _fetch_session(connection, upload_id))

    async def set_size(self, upload_id: str, file_size: int, total_chunks: int) -> UploadSession | None:
        def set_size(connection: sqlite3.Connection) -> UploadSession | None:
            session = _fetch_session(connection, upload_id)
            if session is None or not session.status.accepts_chunks:
                return None
            if file_size > session.file_size:
                raise ValueError(f"upload {upload_id} reserved {session.file_size} bytes, not {file_size}")
            connection.execute(
                "UPDATE uploads SET file_size = ?, total_chunks = ? WHERE id = ?", (file_size, total_chunks, upload_id)
            )
            if file_size < session.file_size:
                change_usage(connection, session.owner_id, file_size - session.file_size)
            return msgspec.structs.replace(session, file_size=file_size, total_chunks=total_chunks)

        return await self._db.transaction(set_size)

    async def list_unfinished(self, owner_id: str, limit: int, cursor: str | None) -> SessionPage:
        if cursor is None:
            sql = (
                "SELECT * FROM uploads INDEXED BY uploads_unfinished_by_owner"
                " WHERE owner_id = ? AND status IN ('pending', 'in_progress', 'finalizing')"
                " ORDER BY created_at DESC, id DESC LIMIT ?"
            )
            params: tuple[str | int, ...] = (owner_id, limit + 1)
        else:
            created_at, upload_id = decode_cursor(cursor, 2)
            sql = (
                "SELECT * FROM uploads INDEXED BY uploads_unfinished_by_owner"
                " WHERE owner_id = ? AND status IN ('pending', 'in_progress', 'finalizing')"
                " AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"
            )
            params = (owner_id, created_at, upload_id, limit + 1)
        sessions = await self._db.read(lambda connection: _sessions(connection, sql, params))
        page = sessions[:limit]
        last = page[-1] if len(sessions) > limit else None
        return SessionPage(
            sessions=page, next_cursor=encode_cursor(db_time(last.created_at), last.id) if last else None
        )

    async def usage(self, owner_id: str) -> int:
        row = await self._db.fetch_one("SELECT bytes FROM usage WHERE owner_id = ?", (owner_id,))
        return int(row["bytes"]) if row else 0

    async def save_chunk_hash(self, upload_id: str, n: int, sha256: str, now: datetime) -> UploadSession | None:
        def save(connection: sqlite3.Connection) -> UploadSession | None:
            session = _fetch_session(connection, upload_id)
            if session is None or not session.status.accepts_chunks or session.expires_at <= now:
                return session
            inserted = connection.execute(
                "INSERT INTO upload_chunks (upload_id, n, sha256) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (upload_id, n, sha256),
            ).rowcount
            if not inserted:
                connection.execute(
                    "UPDATE upload_chunks SET sha256 = ? WHERE upload_id = ? AND n = ? AND sha256 IS NULL",
                    (sha256, upload_id, n),
                )
                return session
            connection.execute(
                "UPDATE uploads SET stored_chunks = stored_chunks + 1, updated_at = ? WHERE id = ?",
                (db_time(now), upload_id),
            )
            return msgspec.structs.replace(session, stored_chunks=session.stored_chunks + 1, updated_at=now)

        return await self._db.transaction(save)

    async def record_chunks(self, chunks: Sequence[ChunkStored], now: datetime) -> list[UploadSession]:
        def record(connection: sqlite3.Connection) -> list[UploadSession]:
            for chunk in chunks:
                _record_one(connection, chunk, now)
            named = list(dict.fromkeys(chunk.upload_id for chunk in chunks))
            return [session for upload_id in named if (session := _fetch_session(connection, upload_id))]

        return await self._db.transaction(record)

    async def list_chunks(self, upload_id: str, after: int = 0, limit: int = 1000) -> list[StoredChunk]:
        rows = await self._db.fetch_all(
            "SELECT n, sha256, recorded_at, part_etag FROM upload_chunks WHERE upload_id = ? AND n > ?"
            " ORDER BY n LIMIT ?",
            (upload_id, after, limit),
        )
        return [
            StoredChunk(n=r["n"], sha256=r["sha256"], recorded=r["recorded_at"] is not None, part_etag=r["part_etag"])
            for r in rows
        ]

    async def claim_finalize(
        self, upload_id: str, worker: str, now: datetime, lease_until: datetime
    ) -> UploadSession | None:
        def claim(connection: sqlite3.Connection) -> UploadSession | None:
            claimed = connection.execute(
                "UPDATE uploads SET status = ?, lease_owner = ?, lease_expires_at = ?, updated_at = ?,"
                " finalize_attempts = finalize_attempts + 1"
                " WHERE id = ? AND ((status = ? AND recorded_chunks = total_chunks)"
                " OR (status = ? AND lease_expires_at < ?))",
                (
                    _FINALIZING,
                    worker,
                    db_time(lease_until),
                    db_time(now),
                    upload_id,
                    UploadStatus.IN_PROGRESS.value,
                    _FINALIZING,
                    db_time(now),
                ),
            ).rowcount
            return _fetch_session(connection, upload_id) if claimed == 1 else None

        return await self._db.transaction(claim)

    async def renew_lease(self, upload_id: str, worker: str, lease_until: datetime) -> bool:
        changed = await self._db.execute(
            "UPDATE uploads SET lease_expires_at = ? WHERE id = ? AND status = ? AND lease_owner = ?",
            (db_time(lease_until), upload_id, _FINALIZING, worker),
        )
        return changed == 1

    async def release_lease(self, upload_id: str, worker: str, now: datetime) -> None:
        # Just before now, so "lease_expires_at < now" holds for the very next claim.
        lapsed = now - timedelta(microseconds=1)
        await self._db.execute(
            "UPDATE uploads SET lease_expires_at = ? WHERE id = ? AND status = ? AND lease_owner = ?",
            (db_time(lapsed), upload_id, _FINALIZING, worker),
        )

    async def set_assembly(self, upload_id: str, worker: str, assembly_id: str | None) -> bool:
        def keep(connection: sqlite3.Connection) -> bool:
            changed = connection.execute(
                "UPDATE uploads SET assembly_id = ? WHERE id = ? AND status = ? AND lease_owner = ?",
                (assembly_id, upload_id, _FINALIZING, worker),
            ).rowcount
            if changed and assembly_id is None:
                connection.execute("UPDATE upload_chunks SET part_etag = NULL WHERE upload_id = ?", (upload_id,))
            return changed == 1

        return await self._db.transaction(keep)

    async def record_parts(self, upload_id: str, parts: list[Part]) -> None:
        await self._db.transaction(
            lambda connection: connection.executemany(
                "UPDATE upload_chunks SET part_etag = ? WHERE upload_id = ? AND n = ?",
                [(part.etag, upload_id, part.number) for part in parts],
            )
        )

    async def fail(self, upload_id: str, worker: str, reason: str, now: datetime) -> bool:
        def fail(connection: sqlite3.Connection) -> bool:
            failed = _end_without_file(
                connection, upload_id, UploadStatus.FAILED, now, "status = ? AND lease_owner = ?", _FINALIZING, worker
            )
            if failed:
                connection.execute("UPDATE uploads SET failure_reason = ? WHERE id = ?", (reason, upload_id))
            return failed

        return await self._db.transaction(fail)

    async def complete(self, upload_id: str, worker: str, file_id: str, now: datetime) -> bool:
        changed = await self._db.execute(
            "UPDATE uploads SET status = ?, file_id = ?, lease_owner = NULL, lease_expires_at = NULL,"
            " updated_at = ? WHERE id = ? AND status = ? AND lease_owner = ?",
            (UploadStatus.COMPLETED.value, file_id, db_time(now), upload_id, _FINALIZING, worker),
        )
        return changed == 1

    async def cancel(self, upload_id: str, now: datetime) -> UploadSession | None:
        def cancel(connection: sqlite3.Connection) -> UploadSession | None:
            _end_without_file(connection, upload_id, UploadStatus.CANCELLED, now, "status IN (?, ?)", *_ACCEPTING)
            return _fetch_session(connection, upload_id)

        return await self._db.transaction(cancel)

    async def due_to_expire(self, now: datetime, limit: int) -> list[UploadSession]:
        return await self._db.read(
            lambda connection: _sessions(
                connection,
                "SELECT * FROM uploads INDEXED BY uploads_accepting_by_expiry"
                " WHERE status IN ('pending', 'in_progress') AND expires_at <= ? ORDER BY expires_at LIMIT ?",
                (db_time(now), limit),
            )
        )

    async def expire(self, upload_id: str, now: datetime) -> bool:
        return await self._db.transaction(
            lambda connection: _end_without_file(
                connection,
                upload_id,
                UploadStatus.EXPIRED,
                now,
                "status IN (?, ?) AND expires_at <= ?",
                *_ACCEPTING,
                db_time(now),
            )
        )

    async def needing_cleanup(self, limit: int) -> list[UploadSession]:
        return await self._db.read(
            lambda connection: _sessions(
                connection,
                "SELECT * FROM uploads INDEXED BY uploads_needing_cleanup WHERE cleaned_at IS NULL"
                " AND status IN ('completed', 'cancelled', 'expired', 'failed') ORDER BY updated_at LIMIT ?",
                (limit,),
            )
        )

    async def mark_cleaned(self, upload_id: str, now: datetime) -> None:
        await self._db.execute("UPDATE uploads SET cleaned_at = ? WHERE id = ?", (db_time(now), upload_id))

    async def stalled(self, now: datetime, idle_since: datetime, limit: int) -> list[UploadSession]:
        return await self._db.read(
            lambda connection: _sessions(
                connection,
                "SELECT * FROM uploads INDEXED BY uploads_needing_a_push"
                " WHERE status IN ('pending', 'in_progress')"
                " AND (stored_chunks > recorded_chunks OR recorded_chunks = total_chunks) AND updated_at < ?"
                " UNION ALL SELECT * FROM uploads INDEXED BY uploads_finalizing_by_lease"
                " WHERE status = 'finalizing' AND lease_expires_at < ?"
                " LIMIT ?",
                (db_time(idle_since), db_time(now), limit),
            )
        )

    async def by_status(self, status: UploadStatus, limit: int) -> list[UploadSession]:
        if status is UploadStatus.FAILED:
            sql = (
                "SELECT * FROM uploads INDEXED BY uploads_failed_by_time WHERE status = 'failed'"
                " ORDER BY updated_at, id LIMIT ?"
            )
        elif status is UploadStatus.FINALIZING:
            sql = (
                "SELECT * FROM uploads INDEXED BY uploads_finalizing_by_lease WHERE status = 'finalizing'"
                " ORDER BY lease_expires_at LIMIT ?"
            )
        else:
            raise ValueError(f"sessions are not listed by status {status.value}")
        return await self._db.read(lambda connection: _sessions(connection, sql, (limit,)))
