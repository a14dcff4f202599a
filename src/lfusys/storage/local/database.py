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


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: autocommit; transactions are opened explicitly.
    connection = sqlite3.connect(path, isolation_level=None)
    connection.row_factory = sqlite3.Row
    for pragma in (
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
        f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
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


class Database:
    def __init__(self, executor: ThreadPoolExecutor, connection: sqlite3.Connection) -> None:
        self._executor = executor
        self._connection = connection

    @classmethod
    async def open(cls, path: Path) -> Database:
        private_directory(path.parent)
        # SQLite gives its -wal and -shm files the database file's permissions.
        private_file(path)
        for companion in ("-wal", "-shm"):
            tighten(path.with_name(path.name + companion), PRIVATE_FILE)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        try:
            connection = await asyncio.get_running_loop().run_in_executor(executor, _connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, connection)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._connection.close)
        self._executor.shutdown(wait=True)

    async def run(self, operation: Operation[T]) -> T:
        """Run ``operation`` on the connection in the database thread (statements autocommit)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, operation, self._connection)

    async def transaction(self, operation: Operation[T]) -> T:
        """Run ``operation`` in one write transaction (``BEGIN IMMEDIATE``), committed if it returns
        and rolled back if it raises."""
        return await self.run(lambda connection: _in_transaction(operation, connection))

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = await self.run(lambda connection: connection.execute(sql, params).fetchone())
        return row

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return await self.run(lambda connection: connection.execute(sql, params).fetchall())

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
