"""Server keys: generated once, private to the owner, stable across restarts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from lfusys.keys import load_or_create_keys, new_keys
from lfusys.settings import load_settings


def test_keys_are_created_once_with_mode_0600(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path / "new" / "data")

    first = load_or_create_keys(settings)
    second = load_or_create_keys(settings)

    assert first == second
    assert stat.S_IMODE(settings.local.secrets_path.stat().st_mode) == 0o600
    assert len({first.jwt_access, first.jwt_refresh, first.csrf, first.download_signing}) == 4
    assert all(len(key) >= 64 for key in json.loads(settings.local.secrets_path.read_text()).values())


def test_loose_permissions_are_tightened(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path)
    load_or_create_keys(settings)
    settings.local.secrets_path.chmod(0o644)

    load_or_create_keys(settings)

    assert stat.S_IMODE(settings.local.secrets_path.stat().st_mode) == 0o600


def test_a_missing_key_is_added_and_existing_ones_kept(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path)
    original = load_or_create_keys(settings)
    stored = json.loads(settings.local.secrets_path.read_text())
    del stored["download_signing"]
    settings.local.secrets_path.write_text(json.dumps(stored))

    updated = load_or_create_keys(settings)

    assert updated.jwt_access == original.jwt_access
    assert updated.download_signing != original.download_signing
    assert "download_signing" in json.loads(settings.local.secrets_path.read_text())


def test_secrets_from_the_environment_win(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path, jwt_access_secret="a" * 40, jwt_refresh_secret="b" * 40)

    keys = load_or_create_keys(settings)

    assert (keys.jwt_access, keys.jwt_refresh) == ("a" * 40, "b" * 40)
    assert "a" * 40 not in settings.local.secrets_path.read_text()


def test_a_corrupt_keys_file_stops_start_up_instead_of_being_overwritten(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path)
    settings.local.secrets_path.write_text('["not", "a", "keys", "file"]')

    with pytest.raises(ValueError, match="not a valid keys file"):
        load_or_create_keys(settings)

    assert settings.local.secrets_path.read_text() == '["not", "a", "keys", "file"]'


def test_keys_made_afresh_are_new_each_time_kept_nowhere_and_given_secrets_win(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path / "data", jwt_access_secret="a" * 40)

    first, second = new_keys(settings), new_keys(settings)

    assert first.jwt_access == second.jwt_access == "a" * 40
    assert first.jwt_refresh != second.jwt_refresh
    assert first.download_signing != second.download_signing
    assert not (tmp_path / "data").exists()
