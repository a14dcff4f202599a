"""SQLite adapter for finished files."""

from __future__ import annotations

import sqlite3

from lfusys.files.records import FilePage, FileRecord
from lfusys.storage.cursors import decode_cursor, encode_cursor
from lfusys.storage.local.database import Database, db_time, from_db_time
from lfusys.storage.local.usage import change_usage


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


def _cursor(record: FileRecord) -> str:
    return encode_cursor(db_time(record.created_at), record.id)


class SqliteFileStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_if_absent(self, record: FileRecord) -> FileRecord:
        def create(connection: sqlite3.Connection) -> FileRecord:
            connection.execute(
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
            return _record(connection.execute("SELECT * FROM files WHERE id = ?", (record.id,)).fetchone())

        return await self._db.transaction(create)

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
            created_at, file_id = decode_cursor(cursor, 2)
            rows = await self._db.fetch_all(
                "SELECT * FROM files WHERE owner_id = ? AND (created_at < ? OR (created_at = ? AND id < ?))"
                " ORDER BY created_at DESC, id DESC LIMIT ?",
                (owner_id, created_at, created_at, file_id, limit + 1),
            )
        records = [_record(row) for row in rows[:limit]]
        next_cursor = _cursor(records[-1]) if len(rows) > limit else None
        return FilePage(files=records, next_cursor=next_cursor)

    async def delete(self, file_id: str, owner_id: str) -> FileRecord | None:
        def delete(connection: sqlite3.Connection) -> FileRecord | None:
            row = connection.execute(
                "DELETE FROM files WHERE id = ? AND owner_id = ? RETURNING *", (file_id, owner_id)
            ).fetchone()
            if row is None:
                return None
            record = _record(row)
            change_usage(connection, record.owner_id, -record.size)
            return record

        return await self._db.transaction(delete)
