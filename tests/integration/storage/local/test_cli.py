"""The ``lfusys`` command on the local backend, whose data outlives a process: migrate, dead-letters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lfusys.storage.backend import open_backend, server_keys
from lfusys.storage.local.database import migrations_dir
from tests.integration.test_cli import run
from tests.support import FakeClock, make_settings

pytestmark = pytest.mark.local_only("the local backend's own files and its commands")


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    first = run(tmp_path / "data", "migrate")
    second = run(tmp_path / "data", "migrate")

    assert first.returncode == 0, first.stderr
    names = sorted(path.stem for path in migrations_dir().glob("[0-9]*.sql"))
    assert f"applied {len(names)} migration(s): {', '.join(names)}" in first.stdout
    assert second.returncode == 0
    assert "applied 0 migration(s)" in second.stdout
    assert (tmp_path / "data" / "lfusys.sqlite3").is_file()


async def test_dead_letters_lists_events_that_could_not_be_handled(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run(data_dir, "dead-letters").stdout == ""
    settings = make_settings(data_dir, queue_max_receives=1)
    async with open_backend(settings, server_keys(settings), FakeClock()) as backend:
        await backend.queue.send("not an S3 event")
        await backend.queue.receive(10, 0, 0)  # received once, never deleted
        await backend.queue.receive(10, 0, 0)  # one receive too many: dead-lettered

    result = run(data_dir, "dead-letters")

    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    letter = json.loads(line)
    assert (letter["body"], letter["receive_count"]) == ("not an S3 event", 1)
