"""One SQLite connection, used from the event loop through aiosqlite's worker thread.

Every statement runs under one asyncio lock, so a coroutine's transaction is never interleaved with
another coroutine's statements on the shared connection. Several processes (``lfusys serve
--workers N``) coordinate through SQLite's own locking (WAL, ``BEGIN IMMEDIATE``, busy timeout).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite
import structlog

from lfusys.private_files import PRIVATE_FILE, private_directory, private_file, tighten

log = structlog.get_logger(__name__)

Params = Sequence[Any]


def db_time(value: datetime) -> str:
    """Fixed-width UTC text with microseconds, so SQL can compare timestamps as strings."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


_BUSY_TIMEOUT_MS = 10_000


class Database:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        private_directory(path.parent)
        # SQLite gives its -wal and -shm files the database file's permissions.
        private_file(path)
        for companion in ("-wal", "-shm"):
            tighten(path.with_name(path.name + companion), PRIVATE_FILE)
        # isolation_level=None: autocommit; transactions are opened explicitly below.
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = sqlite3.Row
        for pragma in (
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA foreign_keys = ON",
            f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
        ):
            await connection.execute(pragma)
        return cls(connection)

    async def close(self) -> None:
        await self._connection.close()

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async with self._lock, self._connection.execute(sql, params) as cursor:
            row: sqlite3.Row | None = await cursor.fetchone()
            return row

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self._lock, self._connection.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own implicit transaction; return the number of rows changed."""
        async with self._lock, self._connection.execute(sql, params) as cursor:
            return cursor.rowcount

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), committed on success and rolled back on error."""
        async with self._lock:
            await self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                await self._connection.execute("ROLLBACK")
                raise
            await self._connection.execute("COMMIT")


# --- migrations ------------------------------------------------------------------------------


def migrations_dir() -> Path:
    """The versioned schema: packaged inside the wheel, or ``migrations/`` in a source checkout."""
    packaged = Path(str(resources.files("lfusys"))) / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[4] / "migrations"


def _statements(script: str) -> Iterable[str]:
    """Split a migration script into statements (``executescript`` would commit behind our back)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if statement.rstrip(";").strip():
                yield statement
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        raise ValueError(f"incomplete SQL statement at end of migration: {pending.strip()[:60]!r}")


async def apply_migrations(database: Database, directory: Path | None = None) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction; return the names applied.

    Idempotent and safe to run from several processes at once: the version check happens inside the
    write transaction.
    """
    directory = directory or migrations_dir()
    await database.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied: list[str] = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        version = int(path.name[:4])
        async with database.transaction() as connection:
            async with connection.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)) as cursor:
                if await cursor.fetchone() is not None:
                    continue
            for statement in _statements(path.read_text(encoding="utf-8")):
                await connection.execute(statement)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, path.stem, datetime.now(UTC).isoformat()),
            )
        log.info("migration applied", migration=path.stem)
        applied.append(path.stem)
    return applied
