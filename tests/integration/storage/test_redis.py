"""Redis as the KV every process shares: what the app does when it is there, gone, or stalled.

Redis is an optional dependency: without it rate limits and caches fail open, so requests go on,
readiness says ``degraded`` (still 200), and the outage is logged once, not once per request.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.exceptions
from litestar import Litestar

from lfusys.app import create_app
from lfusys.settings import Settings
from lfusys.storage.ports import KVUnavailable
from lfusys.storage.redis import RedisKV, open_redis_kv
from tests.redis_server import paused_redis, redis_env, redis_overrides, stop_redis_for_a_while
from tests.support import API, READY, AppClient, FakeClock, LiveServer, log_lines, make_settings, services_of, signed_in

MINUTE = timedelta(minutes=1)
READY_WITH_REDIS = {**READY["local"], "redis": "ok"}
DEGRADED = {**READY["local"], "status": "degraded", "redis": "degraded"}
DOWN = "redis unavailable; rate limits and caches fail open"
UP = "redis answers again"


@pytest.fixture
def redis_settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, backend="local", **redis_overrides(data_dir))


@pytest.fixture
def redis_app(redis_settings: Settings, clock: FakeClock) -> Litestar:
    return create_app(redis_settings, clock)


@pytest.fixture
async def client(redis_app: Litestar) -> AsyncIterator[AppClient]:
    async with AppClient(redis_app) as test_client:
        yield test_client


def logged(err: str, event: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(err) if line["event"] == event]


async def test_with_redis_configured_every_module_shares_it_and_readiness_reports_it(
    client: AppClient, redis_settings: Settings
) -> None:
    services = services_of(client)

    assert (await client.get("/health/ready")).json() == READY_WITH_REDIS
    assert isinstance(services.kv, RedisKV)
    await services.kv.set("greeting", b"hello", MINUTE)
    async with open_redis_kv(redis_settings.kv) as another_process:
        assert await another_process.get("greeting") == b"hello"


async def test_without_redis_nothing_about_it_is_reported(data_dir: Path, clock: FakeClock) -> None:
    async with AppClient(create_app(make_settings(data_dir, backend="local"), clock)) as client:
        assert (await client.get("/health/ready")).json() == READY["local"]
        assert services_of(client).optional_checks == {}


@pytest.fixture
async def patient_client(data_dir: Path, clock: FakeClock) -> AsyncIterator[AppClient]:
    """A client of an app that waits up to 2 s for Redis: a slow first answer on a busy machine is no
    outage (one would be logged, and a second outage within the log interval is by design not)."""
    settings = make_settings(data_dir, backend="local", redis_timeout=timedelta(seconds=2), **redis_overrides(data_dir))
    async with AppClient(create_app(settings, clock)) as test_client:
        yield test_client


async def test_while_redis_is_down_requests_go_on_readiness_degrades_and_the_outage_is_logged_once(
    patient_client: AppClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client = patient_client
    services = services_of(client)
    assert services.kv_failures.total == 0, "nothing went wrong before the outage"
    await signed_in(client)
    assert (await services.kv.hit("before", MINUTE)).count == 1
    capsys.readouterr()

    with stop_redis_for_a_while():
        for _ in range(5):
            ready = await client.get("/health/ready")
            assert (ready.status_code, ready.json()) == (200, DEGRADED)
            assert (await client.get(f"{API}/auth/me")).status_code == 200
            with pytest.raises(KVUnavailable):
                await services.kv.get("anything")
        assert services.kv_failures.total >= 10
        during = capsys.readouterr().err

    assert (await client.get("/health/ready")).json() == READY_WITH_REDIS
    await services.kv.set("k", b"v", MINUTE)
    assert await services.kv.get("k") == b"v"
    assert (await services.kv.hit("after", MINUTE)).count == 1  # its script loaded again into the new Redis
    after = capsys.readouterr().err
    assert len(logged(during, DOWN)) == 1
    assert logged(during, DOWN)[0]["error"] == "ConnectionError"
    assert len(logged(after, UP)) == 1
    assert logged(during + after, UP)[0]["failures"] == services.kv_failures.total


async def test_a_stalled_redis_is_given_up_on_after_the_timeout(redis_settings: Settings) -> None:
    async with open_redis_kv(redis_settings.kv) as kv:
        await kv.set("k", b"kept", MINUTE)  # a connection in the pool

        with paused_redis():
            for _ in range(2):  # on the pooled connection, then on a new one
                started = time.monotonic()
                with pytest.raises(KVUnavailable) as raised:
                    await kv.get("k")
                waited = time.monotonic() - started
                assert 0.2 <= waited < 0.6
                # Whichever gives up first: the call's deadline or the socket's read timeout.
                assert isinstance(raised.value.__cause__, (TimeoutError, redis.exceptions.TimeoutError))

        assert await kv.get("k") == b"kept"
        assert kv.failures.total == 2


async def test_readiness_waits_for_a_stalled_redis_no_longer_than_its_timeout(client: AppClient) -> None:
    with paused_redis():
        started = time.monotonic()
        ready = await client.get("/health/ready")

    assert (ready.status_code, ready.json()) == (200, DEGRADED)
    assert time.monotonic() - started < 1.0


def test_server_processes_share_redis(tmp_path: Path, data_dir: Path) -> None:
    server = LiveServer(data_dir, tmp_path / "server.log", workers=2, **redis_env(data_dir))
    try:
        assert httpx.get(f"{server.url}/health/ready").json() == READY_WITH_REDIS
    finally:
        server.stop()
