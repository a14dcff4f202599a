"""Counting requests in the KV: verdicts, the tightest of several, whom a request counts as, failing open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from litestar.types import Scope

from lfusys.auth.records import User
from lfusys.errors import TooManyRequests
from lfusys.rate_limits.limits import RateLimits, Rule, Verdict, client_subject, counted, email_subject, tightest
from lfusys.settings import RateLimitSettings
from lfusys.storage.memory.kv import MemoryKV
from lfusys.storage.ports import KVUnavailable, WindowCount
from tests.support import FakeClock

ADA = User(id="u-ada", email="ada@example.com", name="Ada", password_hash=None, created_at=datetime.now(UTC))


def scope(client: str | None = "203.0.113.7", user: User | None = None) -> Scope:
    """The parts of a request's scope the limits read."""
    return cast(Scope, {"client": (client, 1234) if client else None, "user": user, "state": {}})


class UnavailableKV(MemoryKV):
    """A KV whose every count fails, as Redis does when it is down."""

    def __init__(self) -> None:
        super().__init__(FakeClock())
        self.calls = 0

    async def hit(self, key: str, window: timedelta) -> WindowCount:
        self.calls += 1
        raise KVUnavailable("down")


@pytest.mark.parametrize(
    ("resets_in", "reset"),
    [(timedelta(seconds=60), 60), (timedelta(seconds=59.2), 60), (timedelta(milliseconds=3), 1), (timedelta(0), 1)],
)
def test_reset_is_whole_seconds_rounded_up_and_at_least_one(resets_in: timedelta, reset: int) -> None:
    assert Verdict.of(10, WindowCount(count=1, resets_in=resets_in)).reset == reset


def test_the_limit_is_reached_at_its_count_and_exceeded_past_it() -> None:
    at_limit = Verdict(limit=10, count=10, reset=5)
    past = Verdict(limit=10, count=11, reset=5)

    assert (at_limit.remaining, at_limit.exceeded) == (0, False)
    assert (past.remaining, past.exceeded) == (0, True)


def test_the_tightest_verdict_is_an_exceeded_one_else_the_one_with_fewest_remaining() -> None:
    roomy = Verdict(limit=60, count=1, reset=59)
    close = Verdict(limit=10, count=8, reset=900)
    exceeded_soon = Verdict(limit=10, count=11, reset=20)
    exceeded_later = Verdict(limit=10, count=12, reset=800)

    assert tightest([roomy, close]) == close
    assert tightest([roomy, exceeded_soon, close]) == exceeded_soon
    assert tightest([exceeded_soon, exceeded_later]) == exceeded_later  # the wait that lets it through
    assert tightest([]) is None


@pytest.mark.parametrize(
    ("client", "subject"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("testclient", "testclient"),
        (None, "unknown"),
    ],
)
def test_a_client_counts_as_its_address_and_ipv6_as_its_64(client: str | None, subject: str) -> None:
    assert client_subject(scope(client)) == subject


def test_an_email_counts_as_its_normalised_form_and_is_not_kept_readable() -> None:
    subject = email_subject("ada@example.com")

    assert email_subject("  ADA@Example.COM ") == subject
    assert email_subject("\uff41\uff44\uff41@example.com") == subject  # fullwidth "ada", as accounts normalise it
    assert email_subject("eve@example.com") != subject
    assert "ada" not in subject
    assert email_subject("Not An Email") == email_subject("not an email")


async def test_the_api_counts_per_user_and_everything_else_per_address() -> None:
    kv = MemoryKV(FakeClock())
    limits = RateLimits(kv, RateLimitSettings(rate_limit_api=2, rate_limit_auth=2))

    allowed = [await limits.admit(scope(user=ADA), Rule.API) for _ in range(2)]
    over = await limits.admit(scope(user=ADA), Rule.API)
    from_elsewhere = await limits.admit(scope("198.51.100.1", user=ADA), Rule.API)
    anonymous = await limits.admit(scope(), Rule.API)
    auth_route = await limits.admit(scope(user=ADA), Rule.AUTH)

    assert allowed == [Verdict(limit=2, count=1, reset=60), Verdict(limit=2, count=2, reset=60)]
    assert over is not None
    assert over.exceeded
    assert from_elsewhere is not None
    assert from_elsewhere.exceeded  # the same user, wherever they are
    assert anonymous == Verdict(limit=2, count=1, reset=60)
    assert auth_route == Verdict(limit=2, count=1, reset=60)  # /auth counts per address, even signed in


async def test_each_verdict_is_kept_on_the_request() -> None:
    limits = RateLimits(MemoryKV(FakeClock()), RateLimitSettings())
    request = scope()

    ip = await limits.admit(request, Rule.LOGIN)
    await limits.admit_login(request, "ada@example.com")

    assert counted(request) == [ip, Verdict(limit=10, count=1, reset=900)]


async def test_a_sign_in_past_the_email_limit_is_refused_with_the_wait() -> None:
    clock = FakeClock()
    limits = RateLimits(MemoryKV(clock), RateLimitSettings(rate_limit_login_email=2))
    await limits.admit_login(scope("198.51.100.1"), "ada@example.com")
    await limits.admit_login(scope("198.51.100.2"), "ADA@example.com")
    clock.advance(timedelta(minutes=5))

    with pytest.raises(TooManyRequests) as refused:
        await limits.admit_login(scope("198.51.100.3"), "ada@example.com")

    assert refused.value.status_code == 429
    assert refused.value.retry_after == 600


async def test_a_limit_of_zero_is_off_and_asks_the_kv_nothing() -> None:
    kv = UnavailableKV()
    limits = RateLimits(kv, RateLimitSettings(rate_limit_login=0, rate_limit_login_email=0))
    request = scope()

    assert await limits.admit(request, Rule.LOGIN) is None
    await limits.admit_login(request, "ada@example.com")

    assert kv.calls == 0
    assert counted(request) == []


async def test_a_kv_that_does_not_answer_lets_every_request_through() -> None:
    kv = UnavailableKV()
    limits = RateLimits(kv, RateLimitSettings(rate_limit_login=1, rate_limit_login_email=1))
    request = scope()

    for _ in range(5):
        assert await limits.admit(request, Rule.LOGIN) is None
        await limits.admit_login(request, "ada@example.com")

    assert kv.calls == 10
    assert counted(request) == []
