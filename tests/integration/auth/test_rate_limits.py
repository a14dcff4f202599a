"""Rate limits over HTTP: per client address on ``/auth``, per email on sign-in, per user on the rest of the
API; their headers and windows, who is believed to be the client, a KV that does not answer, and what a
flood of sign-ins may cost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from lfusys.app import create_app
from lfusys.storage.memory.kv import MemoryKV
from lfusys.storage.ports import KVUnavailable, WindowCount
from tests.argon2_probe import ConcurrentVerifications
from tests.conftest import AppFactory
from tests.redis_server import redis_overrides, stop_redis_for_a_while
from tests.support import (
    API,
    PASSWORD,
    AppClient,
    FakeClock,
    LiveServer,
    another_user,
    csrf_headers,
    log_lines,
    make_settings,
    register,
    signed_in,
)

pytestmark = pytest.mark.only_on(
    "memory", why="limits count in the KV: the same in-process KV, on the test's clock, on every backend"
)

BEHIND_A_PROXY = {"trusted_proxies": ("127.0.0.1",)}
"""The test client's own address (127.0.0.1) is a trusted proxy, as a load balancer's would be."""
NO_LIMITS = {
    "rate_limit_login": 0,
    "rate_limit_login_email": 0,
    "rate_limit_register": 0,
    "rate_limit_auth": 0,
    "rate_limit_api": 0,
}
TINY_LIMITS = dict.fromkeys(NO_LIMITS, 1)


class StillClock(FakeClock):
    """Time that moves only when the test moves it, so every window's remaining seconds are exact."""

    def __init__(self) -> None:
        super().__init__()
        self.start = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.start + self.offset


@pytest.fixture
def clock() -> StillClock:
    return StillClock()


async def attempt_login(
    client: httpx.AsyncClient, email: str, password: str = "wrong password", via: str | None = None
) -> httpx.Response:
    """A sign-in attempt; ``via`` is the ``X-Forwarded-For`` a proxy in front would have sent."""
    headers = await csrf_headers(client)
    if via is not None:
        headers["x-forwarded-for"] = via
    return await client.post(f"{API}/auth/login", json={"email": email, "password": password}, headers=headers)


def limit_headers(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """``RateLimit-Limit``, ``-Remaining`` and ``-Reset``."""
    headers = response.headers
    return headers.get("ratelimit-limit"), headers.get("ratelimit-remaining"), headers.get("ratelimit-reset")


def assert_too_many(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {"error": "too many requests"}
    assert response.headers["retry-after"] == str(retry_after)


# --- per client address ----------------------------------------------------------------------


async def test_the_tenth_sign_in_from_an_address_goes_through_the_eleventh_waits_for_the_window(
    app_factory: AppFactory, clock: StillClock
) -> None:
    # Only the address is counted here (the per-email count would tie with it and be the one sent).
    async with AppClient(app_factory(rate_limit_login_email=0)) as client:
        for n in range(1, 11):
            response = await attempt_login(client, f"user{n}@example.com")
            assert response.status_code == 401
            assert limit_headers(response) == ("10", str(10 - n), "60")

        refused = await attempt_login(client, "user11@example.com")
        assert_too_many(refused, 60)
        assert limit_headers(refused) == ("10", "0", "60")

        clock.advance(timedelta(seconds=45))
        assert_too_many(await attempt_login(client, "user12@example.com"), 15)

        clock.advance(timedelta(seconds=15))
        again = await attempt_login(client, "user13@example.com")
        assert again.status_code == 401
        assert limit_headers(again) == ("10", "9", "60")


async def test_registrations_from_an_address_are_limited(client: AppClient, clock: StillClock) -> None:
    for n in range(10):
        assert (await register(client, f"user{n}@example.com")).status_code == 201

    assert_too_many(await register(client, "user10@example.com"), 60)
    # Sign-in is a limit of its own.
    assert (await attempt_login(client, "user1@example.com", PASSWORD)).status_code == 200

    clock.advance(timedelta(minutes=1))
    assert (await register(client, "user10@example.com")).status_code == 201


async def test_the_other_auth_routes_share_a_looser_limit_of_their_own(client: AppClient) -> None:
    first = await client.get(f"{API}/auth/me")
    assert first.status_code == 401
    assert limit_headers(first) == ("60", "59", "60")
    for n in range(59):
        path = "/auth/providers" if n % 2 else "/auth/me"
        assert (await client.get(f"{API}{path}")).status_code in {200, 401}

    assert_too_many(await client.get(f"{API}/auth/providers"), 60)
    assert_too_many(await client.post(f"{API}/auth/refresh", headers=await csrf_headers(client)), 60)
    assert (await attempt_login(client, "ada@example.com")).status_code == 401


async def test_behind_a_trusted_proxy_each_forwarded_client_has_a_limit_of_its_own(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(**BEHIND_A_PROXY)) as client:
        for n in range(10):
            # What the client wrote itself (left of the hop the proxy appended) changes nothing.
            response = await attempt_login(client, f"user{n}@example.com", via=f"6.6.6.{n}, 203.0.113.7")
            assert response.status_code == 401

        assert_too_many(await attempt_login(client, "user10@example.com", via="7.7.7.7, 203.0.113.7"), 60)
        assert (await attempt_login(client, "user11@example.com", via="203.0.113.8")).status_code == 401
        assert (await attempt_login(client, "user12@example.com")).status_code == 401  # the proxy's own


async def test_an_ipv6_client_counts_as_its_64(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(**BEHIND_A_PROXY)) as client:
        for n in range(10):
            assert (await attempt_login(client, f"user{n}@example.com", via=f"2001:db8::{n:x}")).status_code == 401

        assert_too_many(await attempt_login(client, "user10@example.com", via="[2001:db8::ffff]:443"), 60)
        assert (await attempt_login(client, "user11@example.com", via="2001:db8:0:1::1")).status_code == 401


@pytest.mark.parametrize("trusted", [(), ("10.0.0.0/8",)], ids=["no proxies", "other proxies"])
async def test_an_untrusted_peer_cannot_choose_its_address(app_factory: AppFactory, trusted: tuple[str, ...]) -> None:
    async with AppClient(app_factory(trusted_proxies=trusted)) as client:
        for n in range(10):
            response = await attempt_login(client, f"user{n}@example.com", via=f"198.51.100.{n}")
            assert response.status_code == 401

        assert_too_many(await attempt_login(client, "user10@example.com", via="198.51.100.99"), 60)


@pytest.mark.parametrize("trusted", ["127.0.0.1", ""], ids=["behind a proxy", "no proxies"])
def test_lfusys_serve_takes_the_client_from_a_trusted_proxy_only(tmp_path: Path, data_dir: Path, trusted: str) -> None:
    """Under uvicorn as under the test client: the app alone reads X-Forwarded-For (uvicorn, left to
    itself, would trust 127.0.0.1 even with no proxies configured)."""
    server = LiveServer(data_dir, tmp_path / "server.log", backend="memory", LFUSYS_TRUSTED_PROXIES=trusted)
    try:
        forwarded = httpx.get(
            f"{server.url}/api/v1/auth/providers", headers={"x-forwarded-for": "6.6.6.6, 203.0.113.7"}
        )
        direct = httpx.get(f"{server.url}/api/v1/auth/providers")
    finally:
        server.stop()

    access = {line["request_id"]: line for line in log_lines(server.log_path.read_text()) if line["event"] == "request"}
    assert access[forwarded.headers["x-request-id"]]["client"] == ("203.0.113.7" if trusted else "127.0.0.1")
    assert access[direct.headers["x-request-id"]]["client"] == "127.0.0.1"


# --- per email ----------------------------------------------------------------------------


async def test_sign_ins_at_one_email_are_limited_from_every_address_before_any_password_is_checked(
    app_factory: AppFactory, clock: StillClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AppClient(app_factory(**BEHIND_A_PROXY)) as client:
        assert (await register(client, "ada@example.com")).status_code == 201
        verifications = ConcurrentVerifications(monkeypatch, seconds=0)
        for n in range(10):
            response = await attempt_login(client, "Ada@Example.com", via=f"198.51.100.{n}")
            assert response.status_code == 401
            # The email's count is the tighter one: its headers are sent.
            assert limit_headers(response) == ("10", str(9 - n), "900")

        # Even the right password, from a new address: refused, and no password was checked.
        refused = await attempt_login(client, "ada@example.com", PASSWORD, via="198.51.100.200")
        assert_too_many(refused, 900)
        assert limit_headers(refused) == ("10", "0", "900")
        assert verifications.total == 10
        # Another account from the same address is not held back.
        assert (await attempt_login(client, "eve@example.com", via="198.51.100.200")).status_code == 401

        clock.advance(timedelta(minutes=14))
        assert_too_many(await attempt_login(client, "ada@example.com", PASSWORD, via="198.51.100.201"), 60)
        clock.advance(timedelta(minutes=1))
        assert (await attempt_login(client, "ada@example.com", PASSWORD, via="198.51.100.201")).status_code == 200


# --- per user -------------------------------------------------------------------------------


async def test_the_rest_of_the_api_is_limited_per_user_each_on_their_own(app_factory: AppFactory) -> None:
    app = app_factory(rate_limit_api=5)
    async with AppClient(app) as ada:
        await signed_in(ada, "ada@example.com")
        for n in range(5):
            response = await ada.get(f"{API}/uploads")
            assert response.status_code == 200
            assert limit_headers(response) == ("5", str(4 - n), "60")
        assert_too_many(await ada.get(f"{API}/files"), 60)

        # Another user at the same address has a count of their own.
        eve = await another_user(ada, "eve@example.com")
        assert (await eve.get(f"{API}/uploads")).status_code == 200
        # The /auth routes are not counted against it.
        assert (await ada.get(f"{API}/auth/me")).status_code == 200
        # Without a user, the address is counted.
        anonymous = AppClient(app)
        for _ in range(5):
            assert (await anonymous.get(f"{API}/uploads")).status_code == 401
        assert_too_many(await anonymous.get(f"{API}/uploads"), 60)


# --- never limited, switched off, failing open --------------------------------------------------


async def test_health_api_docs_and_the_web_app_are_never_limited(app_factory: AppFactory, tmp_path: Path) -> None:
    web_dir = tmp_path / "dist"
    web_dir.mkdir()
    (web_dir / "index.html").write_text("<!doctype html><title>LFUSYS</title>")
    async with AppClient(app_factory(web_dir=web_dir, **TINY_LIMITS)) as client:
        for _ in range(5):
            for path in ("/health/live", "/health/ready", "/", "/signin", "/api/docs", "/api/docs/openapi.json"):
                response = await client.get(path)
                assert response.status_code == 200, path
                assert "ratelimit-limit" not in response.headers


async def test_a_limit_of_zero_turns_it_off(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(rate_limit_login=0, rate_limit_login_email=0)) as client:
        for _ in range(30):
            response = await attempt_login(client, "ada@example.com")
            assert response.status_code == 401
            assert "ratelimit-limit" not in response.headers


async def test_with_one_limit_off_the_other_still_holds(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(rate_limit_login=0, rate_limit_login_email=3)) as client:
        for _ in range(3):
            assert (await attempt_login(client, "ada@example.com")).status_code == 401
        assert_too_many(await attempt_login(client, "ada@example.com"), 900)
        assert (await attempt_login(client, "eve@example.com")).status_code == 401


async def test_while_the_kv_does_not_answer_every_request_goes_through(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(kv: MemoryKV, key: str, window: timedelta) -> WindowCount:
        raise KVUnavailable("no answer")

    monkeypatch.setattr(MemoryKV, "hit", unavailable)
    async with AppClient(app_factory(**TINY_LIMITS)) as client:
        for n in range(3):
            assert (await register(client, f"user{n}@example.com")).status_code == 201
        for _ in range(3):
            response = await attempt_login(client, "user0@example.com")
            assert response.status_code == 401
            assert "ratelimit-limit" not in response.headers
        assert (await attempt_login(client, "user0@example.com", PASSWORD)).status_code == 200
        for _ in range(3):
            assert (await client.get(f"{API}/uploads")).status_code == 200


async def test_processes_sharing_redis_share_the_counts_and_go_on_while_it_is_down(
    data_dir: Path, clock: StillClock
) -> None:
    settings = make_settings(data_dir, backend="local", rate_limit_login=2, **redis_overrides(data_dir))
    async with AppClient(create_app(settings, clock)) as one, AppClient(create_app(settings, clock)) as other:
        assert (await attempt_login(one, "ada@example.com")).status_code == 401
        assert (await attempt_login(other, "eve@example.com")).status_code == 401
        assert (await attempt_login(one, "joe@example.com")).status_code == 429

        with stop_redis_for_a_while():
            for client in (one, other) * 3:
                response = await attempt_login(client, "ada@example.com")
                assert response.status_code == 401
                assert "ratelimit-limit" not in response.headers


# --- the cost of a flood of sign-ins ----------------------------------------------------------


async def test_a_flood_of_sign_ins_never_runs_more_argon2_verifications_at_once_than_the_bound(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory(argon2_concurrency=2, argon2_queue_wait=timedelta(seconds=60), **NO_LIMITS)
    async with AppClient(app) as client:
        await csrf_headers(client)
        verifications = ConcurrentVerifications(monkeypatch, seconds=0.02)

        responses = await asyncio.gather(*(attempt_login(client, f"guess{n}@example.com") for n in range(40)))

    assert [response.status_code for response in responses] == [401] * 40
    assert verifications.total == 40
    assert verifications.most == 2


async def test_sign_ins_that_wait_too_long_for_a_hash_are_told_to_come_back_in_a_second(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory(argon2_concurrency=1, argon2_queue_wait=timedelta(milliseconds=50), **NO_LIMITS)
    async with AppClient(app) as client:
        await csrf_headers(client)
        verifications = ConcurrentVerifications(monkeypatch, seconds=0.3)

        responses = await asyncio.gather(*(attempt_login(client, f"guess{n}@example.com") for n in range(10)))

    statuses = [response.status_code for response in responses]
    assert statuses.count(401) == verifications.total >= 1
    busy = [response for response in responses if response.status_code == 503]
    assert len(busy) == 10 - verifications.total >= 1
    for response in busy:
        assert response.headers["retry-after"] == "1"
        assert response.json() == {"error": "too many sign-ins at once; try again shortly"}
    assert verifications.most == 1
