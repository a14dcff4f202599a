"""A sign-in started on one replica is finished on another: two ``lfusys serve`` processes sharing the
backend and one Redis, and a browser whose requests alternate between them (as a load balancer without
sticky sessions would send them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fake_oauth import FakeProvider
from tests.redis_server import redis_env
from tests.support import API, LiveServer

pytestmark = pytest.mark.durable_only("replicas share the backend's stored data")

CLIENT_ID, CLIENT_SECRET = "test-client", "test-secret"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(CLIENT_ID, CLIENT_SECRET) as running:
        yield running


@pytest.fixture
def replicas(tmp_path: Path, data_dir: Path, backend_name: str, provider: FakeProvider) -> Iterator[list[LiveServer]]:
    shared = {
        **redis_env(data_dir),
        # Replicas behind one load balancer share its public URL (and so one OAuth callback URL).
        "LFUSYS_PUBLIC_URL": "http://127.0.0.1:8000",
        "LFUSYS_GITHUB_CLIENT_ID": CLIENT_ID,
        "LFUSYS_GITHUB_CLIENT_SECRET": CLIENT_SECRET,
        "LFUSYS_GITHUB_AUTHORIZE_URL": provider.github_authorize_url,
        "LFUSYS_GITHUB_TOKEN_URL": provider.github_token_url,
        "LFUSYS_GITHUB_API_URL": provider.github_api_url,
    }
    started: list[LiveServer] = []
    try:
        for n in range(2):
            log = tmp_path / f"replica-{n}.log"
            started.append(LiveServer(data_dir, log, backend=backend_name, workers=1, **shared))
        yield started
    finally:
        for server in started:
            server.stop()


async def test_a_sign_in_started_on_one_replica_is_finished_on_the_other(replicas: list[LiveServer]) -> None:
    first, second = replicas
    # One cookie jar for both: cookies are per host, not per port, as behind one load balancer.
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as browser:
        started = await browser.get(f"{first.url}{API}/auth/github/login", params={"next": "/files"})
        assert started.status_code == 302, started.text
        approved = await browser.get(started.headers["location"])
        assert approved.status_code in {302, 303, 307}, approved.text
        back = urlsplit(approved.headers["location"])
        callback = f"{back.path}?{back.query}"

        finished = await browser.get(f"{second.url}{callback}")
        me_on_first = await browser.get(f"{first.url}{API}/auth/me")
        replayed_on_first = await browser.get(f"{first.url}{callback}")

    assert finished.status_code == 302
    assert finished.headers["location"] == "/files"
    assert me_on_first.status_code == 200
    assert me_on_first.json()["providers"] == ["github"]
    # Used once, on either replica.
    assert replayed_on_first.status_code == 302
    assert urlsplit(replayed_on_first.headers["location"]).path == "/signin"
    assert "already+used" in replayed_on_first.headers["location"]
