"""One SQLite connection, owned by one thread: every store operation runs there as one function.

An operation (a few statements, usually one transaction) costs one hand-off to the database thread
and back, however many statements it runs; operations never interleave, because the thread runs
them one after the other. Several processes (``lfusys serve --workers N``) coordinate through
SQLite's own locking (WAL, ``BEGIN IMMEDIATE``, busy timeout).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import structlog

from lfusys.private_files import PRIVATE_FILE, private_directory, private_file, tighten

log = structlog.get_logger(__name__)

Params = Sequence[Any]
T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]


def db_time(value: datetime) -> str:
    """Fixed-width UTC text with microseconds, so SQL can compare timestamps as strings."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


_BUSY_TIMEOUT_MS = 10_000


def _connect(path: Path, *pragmas: str) -> sqlite3.Connection:
    # isolation_level=None: autocommit; transactions are opened explicitly.
    connection = sqlite3.connect(path, isolation_level=None)
    connection.row_factory = sqlite3.Row
    for pragma in (
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
        f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
        *pragmas,
    ):
        connection.execute(pragma)
    return connection


def _in_transaction(operation: Operation[T], connection: sqlite3.Connection) -> T:
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = operation(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


class _Lane:
    """One connection and the one thread it is used from."""

    def __init__(self, name: str) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.connection: sqlite3.Connection | None = None

    async def open(self, path: Path, *pragmas: str) -> None:
        loop = asyncio.get_running_loop()
        self.connection = await loop.run_in_executor(self.executor, lambda: _connect(path, *pragmas))

    def call(self, operation: Operation[T]) -> asyncio.Future[T]:
        connection = self.connection
        if connection is None:
            raise RuntimeError("the database is closed")
        return asyncio.get_running_loop().run_in_executor(self.executor, operation, connection)

    async def close(self) -> None:
        if self.connection is not None:
            await self.call(lambda connection: connection.close())
            self.connection = None
        self.executor.shutdown(wait=True)


class Database:
    """A writer and a reader, each a connection in a thread of its own.

    In WAL mode readers never wait for the writer, so the lookups every request makes (who is
    calling, which session) are not held up behind the write transactions of chunks and events.
    A read sees every write this process has finished.
    """

    def __init__(self, writer: _Lane, reader: _Lane) -> None:
        self._writer = writer
        self._reader = reader

    @classmethod
    async def open(cls, path: Path) -> Database:
        private_directory(path.parent)
        # SQLite gives its -wal and -shm files the database file's permissions.
        private_file(path)
        for companion in ("-wal", "-shm"):
            tighten(path.with_name(path.name + companion), PRIVATE_FILE)
        writer, reader = _Lane("sqlite-writer"), _Lane("sqlite-reader")
        try:
            await writer.open(path)
            await reader.open(path, "PRAGMA query_only = ON")
        except BaseException:
            await reader.close()
            await writer.close()
            raise
        return cls(writer, reader)

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    async def run(self, operation: Operation[T]) -> T:
        """Run ``operation`` on the writer's connection in its thread (statements autocommit)."""
        return await self._writer.call(operation)

    async def read(self, operation: Operation[T]) -> T:
        """Run a read-only ``operation`` on the reader's connection in its thread."""
        return await self._reader.call(operation)

    async def transaction(self, operation: Operation[T]) -> T:
        """Run ``operation`` in one write transaction (``BEGIN IMMEDIATE``), committed if it returns
        and rolled back if it raises."""
        return await self.run(lambda connection: _in_transaction(operation, connection))

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = await self.read(lambda connection: connection.execute(sql, params).fetchone())
        return row

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return await self.read(lambda connection: connection.execute(sql, params).fetchall())

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own implicit transaction; return the number of rows changed."""
        return await self.run(lambda connection: connection.execute(sql, params).rowcount)


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


def _apply_one(connection: sqlite3.Connection, *, version: int, name: str, statements: list[str]) -> bool:
    if connection.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
        return False
    for statement in statements:
        connection.execute(statement)
    connection.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        (version, name, datetime.now(UTC).isoformat()),
    )
    return True


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
        statements = list(_statements(path.read_text(encoding="utf-8")))
        migrate = functools.partial(_apply_one, version=version, name=path.stem, statements=statements)
        if await database.transaction(migrate):
            log.info("migration applied", migration=path.stem)
            applied.append(path.stem)
    return applied
