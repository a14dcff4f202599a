"""The TusStore port over the ``tus_uploads`` table: each conditional step is one UPDATE."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from lfusys.storage.local.database import Database, db_time, from_db_time
from lfusys.tus.records import TusUpload


class SqliteTusStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(self, upload: TusUpload) -> None:
        try:
            await self._db.execute(
                'INSERT INTO tus_uploads (id, owner_id, length, deferred, concat, "offset", metadata, created_at)'
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    upload.id,
                    upload.owner_id,
                    upload.length,
                    int(upload.deferred),
                    upload.concat,
                    upload.offset,
                    upload.metadata,
                    db_time(upload.created_at),
                ),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"tus upload {upload.id} exists") from None

    async def get(self, upload_id: str) -> TusUpload | None:
        row = await self._db.fetch_one("SELECT * FROM tus_uploads WHERE id = ?", (upload_id,))
        return _tus_upload(row) if row else None

    async def claim(self, upload_id: str, offset: int, writer: str, until: datetime, now: datetime) -> TusUpload | None:
        changed = await self._db.execute(
            'UPDATE tus_uploads SET writer = ?, writer_until = ? WHERE id = ? AND "offset" = ?'
            " AND (writer IS NULL OR writer_until IS NULL OR writer_until <= ?)",
            (writer, db_time(until), upload_id, offset, db_time(now)),
        )
        return await self.get(upload_id) if changed else None

    async def advance(self, upload_id: str, writer: str, offset: int, new_offset: int, until: datetime) -> bool:
        changed = await self._db.execute(
            'UPDATE tus_uploads SET "offset" = ?, writer_until = ? WHERE id = ? AND writer = ? AND "offset" = ?',
            (new_offset, db_time(until), upload_id, writer, offset),
        )
        return changed > 0

    async def release(self, upload_id: str, writer: str) -> None:
        await self._db.execute(
            "UPDATE tus_uploads SET writer = NULL, writer_until = NULL WHERE id = ? AND writer = ?", (upload_id, writer)
        )

    async def set_length(self, upload_id: str, length: int) -> bool:
        await self._db.execute(
            "UPDATE tus_uploads SET length = ?, deferred = 0 WHERE id = ? AND deferred = 1 AND length >= ?",
            (length, upload_id, length),
        )
        upload = await self.get(upload_id)
        return upload is not None and not upload.deferred and upload.length == length

    async def delete(self, upload_id: str) -> None:
        await self._db.execute("DELETE FROM tus_uploads WHERE id = ?", (upload_id,))


def _tus_upload(row: Any) -> TusUpload:
    return TusUpload(
        id=row["id"],
        owner_id=row["owner_id"],
        length=row["length"],
        deferred=bool(row["deferred"]),
        concat=row["concat"],
        offset=row["offset"],
        metadata=row["metadata"],
        created_at=from_db_time(row["created_at"]),
        writer=row["writer"],
        writer_until=from_db_time(row["writer_until"]) if row["writer_until"] else None,
    )
