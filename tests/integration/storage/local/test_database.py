"""The SQLite database: versioned migrations (applied once, in order, atomically, from any number of
processes), and readiness when it is gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from litestar import Litestar

from lfusys.storage.local.accounts import SqliteUserStore
from lfusys.storage.local.database import Database, _statements, apply_migrations, migrations_dir
from tests.support import BASE_URL, AppClient, services_of

pytestmark = pytest.mark.local_only("the local backend's SQLite database")


async def test_migrations_apply_once(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "db.sqlite3")
    try:
        first = await apply_migrations(database)
        second = await apply_migrations(database)
        tables = {row["name"] for row in await database.fetch_all("SELECT name FROM sqlite_master")}
    finally:
        await database.close()

    expected = sorted(p.stem for p in migrations_dir().glob("[0-9]*.sql"))
    assert first == expected
    assert second == []
    assert {"users", "token_families", "refresh_tokens", "schema_migrations"} <= tables
    assert {"uploads", "upload_chunks", "files", "event_queue", "event_dead_letters"} <= tables


async def test_two_connections_migrating_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    databases = [await Database.open(tmp_path / "db.sqlite3") for _ in range(2)]
    try:
        results = await asyncio.gather(*(apply_migrations(db) for db in databases))
        rows = await databases[0].fetch_all("SELECT version FROM schema_migrations")
    finally:
        for db in databases:
            await db.close()

    assert sorted(results[0] + results[1]) == sorted(p.stem for p in migrations_dir().glob("[0-9]*.sql"))
    assert len(rows) == len(list(migrations_dir().glob("[0-9]*.sql")))


async def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_good.sql").write_text("CREATE TABLE a (x INTEGER);")
    (directory / "0002_bad.sql").write_text("CREATE TABLE b (x INTEGER);\nINSERT INTO missing VALUES (1);")
    database = await Database.open(tmp_path / "db.sqlite3")
    try:
        with pytest.raises(Exception, match="missing"):
            await apply_migrations(database, directory)
        tables = {row["name"] for row in await database.fetch_all("SELECT name FROM sqlite_master")}
        versions = [row["version"] for row in await database.fetch_all("SELECT version FROM schema_migrations")]
    finally:
        await database.close()

    assert "a" in tables
    assert "b" not in tables
    assert versions == [1]


def test_statements_are_split_on_complete_sql() -> None:
    script = "-- comment\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nCREATE INDEX i ON a (x);\n-- trailing\n"

    assert list(_statements(script)) == [
        "-- comment\nCREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE INDEX i ON a (x);",
    ]


async def test_ready_is_503_when_the_database_is_closed(app: Litestar, monkeypatch: pytest.MonkeyPatch) -> None:
    async with AppClient(app, base_url=BASE_URL) as client:
        users = services_of(client).backend.users
        assert isinstance(users, SqliteUserStore)
        database = users._db  # the one database every local store shares
        await database.close()

        async def already_closed() -> None:
            return None

        monkeypatch.setattr(database, "close", already_closed)  # the lifespan closes it again at the end

        response = await client.get("/health/ready")
        live = await client.get("/health/live")

    assert response.status_code == 503
    assert response.json() == {"error": "metadata unavailable"}
    assert live.status_code == 200
