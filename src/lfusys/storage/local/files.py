"""SQLite adapter for finished files."""

from __future__ import annotations

import base64
import sqlite3

import msgspec

from lfusys.storage.local.database import Database, db_time, from_db_time
from lfusys.storage.local.usage import change_usage
from lfusys.storage.ports import FilePage, FileRecord


def _record(row: sqlite3.Row) -> FileRecord:
    return FileRecord(
        id=row["id"],
        owner_id=row["owner_id"],
        upload_id=row["upload_id"],
        name=row["name"],
        type=row["type"],
        size=row["size"],
        checksum=row["checksum"],
        created_at=from_db_time(row["created_at"]),
    )


_MAX_CURSOR_LENGTH = 256  # a real cursor is about 110 characters


def _encode_cursor(record: FileRecord) -> str:
    raw = msgspec.json.encode((db_time(record.created_at), record.id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    """The (created_at, id) a cursor points after; ``ValueError`` for anything this store did not make."""
    if len(cursor) > _MAX_CURSOR_LENGTH or not cursor.isascii():
        raise ValueError("malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # Decoding into exactly two strings stops at the first wrong value, however deep the rest goes.
        return msgspec.json.decode(raw, type=tuple[str, str])
    except (ValueError, msgspec.DecodeError) as exc:
        raise ValueError("malformed cursor") from exc


class SqliteFileStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_if_absent(self, record: FileRecord) -> FileRecord:
        await self._db.execute(
            "INSERT INTO files (id, owner_id, upload_id, name, type, size, checksum, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                record.id,
                record.owner_id,
                record.upload_id,
                record.name,
                record.type,
                record.size,
                record.checksum,
                db_time(record.created_at),
            ),
        )
        stored = await self.get(record.id)
        if stored is None:  # pragma: no cover - deleted between the two statements
            raise LookupError(f"file {record.id} vanished while being created")
        return stored

    async def get(self, file_id: str) -> FileRecord | None:
        row = await self._db.fetch_one("SELECT * FROM files WHERE id = ?", (file_id,))
        return _record(row) if row else None

    async def list_by_owner(self, owner_id: str, limit: int, cursor: str | None) -> FilePage:
        if cursor is None:
            rows = await self._db.fetch_all(
                "SELECT * FROM files WHERE owner_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                (owner_id, limit + 1),
            )
        else:
            created_at, file_id = _decode_cursor(cursor)
            rows = await self._db.fetch_all(
                "SELECT * FROM files WHERE owner_id = ? AND (created_at < ? OR (created_at = ? AND id < ?))"
                " ORDER BY created_at DESC, id DESC LIMIT ?",
                (owner_id, created_at, created_at, file_id, limit + 1),
            )
        records = [_record(row) for row in rows[:limit]]
        next_cursor = _encode_cursor(records[-1]) if len(rows) > limit else None
        return FilePage(files=records, next_cursor=next_cursor)

    async def delete(self, file_id: str, owner_id: str) -> FileRecord | None:
        async with self._db.transaction() as connection:
            async with connection.execute(
                "SELECT * FROM files WHERE id = ? AND owner_id = ?", (file_id, owner_id)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            await connection.execute("DELETE FROM files WHERE id = ?", (file_id,))
            record = _record(row)
            await change_usage(connection, record.owner_id, -record.size)
            return record
