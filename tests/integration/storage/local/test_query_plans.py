"""The SQLite store answers every list and every janitor question from an index, in the order asked,
stopping at its limit: no query scans the table or sorts everything it found first. Checked with
SQLite's own query plans for the statements the store really runs."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lfusys.sessions.records import UploadStatus
from lfusys.storage.cursors import encode_cursor
from lfusys.storage.local.database import Database, apply_migrations
from lfusys.storage.local.files import SqliteFileStore
from lfusys.storage.local.uploads import SqliteUploadStore

pytestmark = pytest.mark.local_only("SQLite's query plans")

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
INDEXED = ("USING INDEX", "USING COVERING INDEX", "USING PRIMARY KEY", "USING INTEGER PRIMARY KEY")


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "lfusys.sqlite3")
    await apply_migrations(database)
    yield database
    await database.close()


async def plans_of(database: Database, run: Callable[[], Awaitable[object]]) -> dict[str, list[str]]:
    """The query plan of every SELECT that ``run`` makes the store execute, by statement."""
    statements: list[str] = []

    def trace(connection: sqlite3.Connection) -> None:
        connection.set_trace_callback(statements.append)

    def untrace(connection: sqlite3.Connection) -> None:
        connection.set_trace_callback(None)

    await database.read(trace)
    await database.run(trace)
    try:
        await run()
    finally:
        await database.read(untrace)
        await database.run(untrace)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert selects, "the store ran no query"

    def explain(connection: sqlite3.Connection) -> dict[str, list[str]]:
        return {s: [row["detail"] for row in connection.execute(f"EXPLAIN QUERY PLAN {s}").fetchall()] for s in selects}

    return await database.read(explain)


def assert_indexed(plans: dict[str, list[str]]) -> None:
    for statement, plan in plans.items():
        reads = [step for step in plan if step.startswith(("SCAN", "SEARCH"))]
        assert reads, statement
        for step in reads:
            assert any(way in step for way in INDEXED), f"{statement}\n  reads the table: {step}"
        assert not any("TEMP B-TREE" in step for step in plan), f"{statement}\n  sorts what it found: {plan}"


@pytest.mark.parametrize(
    "question",
    [
        "due_to_expire",
        "needing_cleanup",
        "stalled",
        "failed",
        "finalizing",
        "first page of unfinished",
        "next page of unfinished",
        "chunk page",
    ],
)
async def test_the_uploads_questions_read_an_index(database: Database, question: str) -> None:
    store = SqliteUploadStore(database)
    runs: dict[str, Callable[[], Awaitable[object]]] = {
        "due_to_expire": lambda: store.due_to_expire(NOW, 100),
        "needing_cleanup": lambda: store.needing_cleanup(100),
        "stalled": lambda: store.stalled(NOW, NOW, 100),
        "failed": lambda: store.by_status(UploadStatus.FAILED, 100),
        "finalizing": lambda: store.by_status(UploadStatus.FINALIZING, 100),
        "first page of unfinished": lambda: store.list_unfinished("owner", 100, None),
        "next page of unfinished": lambda: store.list_unfinished("owner", 100, encode_cursor(NOW.isoformat(), "id")),
        "chunk page": lambda: store.list_chunks("upload", after=10, limit=100),
    }

    assert_indexed(await plans_of(database, runs[question]))


@pytest.mark.parametrize("cursor", [None, encode_cursor(NOW.isoformat(), "id")])
async def test_the_file_list_reads_an_index(database: Database, cursor: str | None) -> None:
    store = SqliteFileStore(database)

    assert_indexed(await plans_of(database, lambda: store.list_by_owner("owner", 20, cursor)))


async def test_the_check_sees_a_scan_and_a_sort(database: Database) -> None:
    async def scan_and_sort() -> None:
        await database.read(lambda c: c.execute("SELECT * FROM uploads ORDER BY file_name").fetchall())

    with pytest.raises(AssertionError, match="reads the table"):
        assert_indexed(await plans_of(database, scan_and_sort))
