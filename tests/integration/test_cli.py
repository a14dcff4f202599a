"""The ``lfusys`` command: version, migrate, serve, and configuration errors."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx

from lfusys import __version__
from lfusys.storage.local import Database, apply_migrations
from lfusys.storage.local.database import migrations_dir
from lfusys.storage.local.queue import LocalEventQueue
from tests.support import API, LiveServer, lfusys_command, subprocess_env


def run(data_dir: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lfusys_command(), *args],
        env=subprocess_env(data_dir, **variables),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    result = run(tmp_path, "--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"lfusys {__version__}"


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    first = run(tmp_path / "data", "migrate")
    second = run(tmp_path / "data", "migrate")

    assert first.returncode == 0, first.stderr
    names = sorted(path.stem for path in migrations_dir().glob("[0-9]*.sql"))
    assert f"applied {len(names)} migration(s): {', '.join(names)}" in first.stdout
    assert second.returncode == 0
    assert "applied 0 migration(s)" in second.stdout
    assert (tmp_path / "data" / "lfusys.sqlite3").is_file()


def test_a_bad_setting_stops_the_command_naming_the_variable(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", LFUSYS_PORT="eighty")

    assert result.returncode == 2
    assert "LFUSYS_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_runs_the_api_and_docs_on_a_real_socket(live_server: LiveServer, data_dir: Path) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        assert client.get("/health/ready").json() == {"status": "ok", "metadata": "ok"}
        assert client.get("/api/docs").status_code == 200
        assert client.get("/api/docs/openapi.json").status_code == 200
        csrf = client.get(f"{API}/auth/me").status_code
        assert csrf == 401
        headers = {"x-csrf-token": client.cookies["lfusys_csrf"]}
        body = {"name": "Ada", "email": "ada@example.com", "password": "correct horse battery"}
        assert client.post(f"{API}/auth/register", json=body, headers=headers).status_code == 201
        login = {"email": "ada@example.com", "password": "correct horse battery"}
        assert client.post(f"{API}/auth/login", json=login, headers=headers).status_code == 200
        assert client.get(f"{API}/auth/me").json()["email"] == "ada@example.com"

    assert (data_dir / "secrets.json").is_file()
    # uvicorn finishes gracefully, then re-raises SIGTERM so the exit status reports it.
    assert live_server.stop() in {0, -signal.SIGTERM}
    assert "Application shutdown complete." in live_server.log_path.read_text()


async def test_dead_letters_lists_events_that_could_not_be_handled(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run(data_dir, "dead-letters").stdout == ""
    database = await Database.open(data_dir / "lfusys.sqlite3")
    try:
        await apply_migrations(database)
        queue = LocalEventQueue(database, max_receives=1)
        await queue.send("not an S3 event")
        await queue.receive(10, 0, 0)  # received once, never deleted
        await queue.receive(10, 0, 0)  # one receive too many: dead-lettered
    finally:
        await database.close()

    result = run(data_dir, "dead-letters")

    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    letter = json.loads(line)
    assert (letter["body"], letter["receive_count"]) == ("not an S3 event", 1)
