"""The local backend's data directory: made on first start, private, and holding the keys the server
signs with."""

from __future__ import annotations

import json
import stat

import httpx
import jwt
import pytest

from lfusys.settings import Settings
from tests.support import API, AppClient, LiveServer, signed_in

pytestmark = pytest.mark.local_only("the local backend's data directory")

Client = AppClient


async def test_first_start_creates_data_dir_keys_and_migrated_database(client: Client, settings: Settings) -> None:
    assert settings.local.data_dir.is_dir()
    assert stat.S_IMODE(settings.local.secrets_path.stat().st_mode) == 0o600
    assert settings.local.database_path.is_file()
    assert (await client.get("/health/ready")).json() == {"status": "ok", "metadata": "ok"}


def test_serve_creates_the_keys_in_the_data_directory(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        assert client.get("/health/ready").status_code == 200

    assert (live_server.data_dir / "secrets.json").is_file()


async def test_sign_ins_are_signed_with_the_stored_keys(client: Client, settings: Settings) -> None:
    await signed_in(client)
    keys = json.loads(settings.local.secrets_path.read_text())
    claims = jwt.decode(client.cookies["lfusys_access"], options={"verify_signature": False})

    client.cookies.delete("lfusys_access")
    client.cookies.set("lfusys_access", jwt.encode(claims, keys["jwt_access"], algorithm="HS256"))
    assert (await client.get(f"{API}/auth/me")).status_code == 200
    client.cookies.delete("lfusys_access")
    client.cookies.set("lfusys_access", jwt.encode(claims, "x" * 48, algorithm="HS256"))
    assert (await client.get(f"{API}/auth/me")).status_code == 401
