"""The data directory, the database and the secrets are private to the service's user."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lfusys.keys import load_or_create_keys
from lfusys.observability.logging import configure_logging
from lfusys.settings import load_settings
from lfusys.storage.local.database import Database
from tests.support import log_lines

pytestmark = pytest.mark.local_only("the local backend's data directory, database and secrets file")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_data_directory_database_and_secrets_are_private(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path / "data")

    load_or_create_keys(settings)
    database = await Database.open(settings.local.database_path)
    await database.fetch_one("SELECT 1")
    await database.close()

    assert mode(settings.local.data_dir) == 0o700
    assert mode(settings.local.secrets_path) == 0o600
    assert mode(settings.local.database_path) == 0o600


async def test_loose_permissions_are_tightened_at_start_up_and_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings({}, data_dir=tmp_path / "data", log_format="json")
    configure_logging(settings)
    load_or_create_keys(settings)
    database = await Database.open(settings.local.database_path)
    await database.execute("CREATE TABLE t (x INTEGER)")
    await database.close()
    wal = settings.local.database_path.with_name(settings.local.database_path.name + "-wal")
    wal.write_bytes(b"")
    for path, loose in (
        (settings.local.data_dir, 0o755),
        (settings.local.secrets_path, 0o644),
        (settings.local.database_path, 0o664),
    ):
        path.chmod(loose)
    wal.chmod(0o644)
    capsys.readouterr()

    load_or_create_keys(settings)
    database = await Database.open(settings.local.database_path)
    wal_mode = mode(wal)  # SQLite removes the -wal file when the last connection closes
    await database.close()

    assert (mode(settings.local.data_dir), mode(settings.local.secrets_path), mode(settings.local.database_path)) == (
        0o700,
        0o600,
        0o600,
    )
    assert wal_mode == 0o600
    logged = log_lines(capsys.readouterr().err)
    tightened = {line["path"] for line in logged if line["event"] == "permissions tightened"}
    assert tightened == {
        str(settings.local.data_dir),
        str(settings.local.secrets_path),
        str(settings.local.database_path),
        str(wal),
    }
