"""Password hashing: at most ``concurrency`` argon2 computations at once, and a short line before 503."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from lfusys.auth.passwords import Passwords
from lfusys.errors import ServerBusy
from tests.argon2_probe import ConcurrentVerifications
from tests.support import FAST_ARGON2


@pytest.fixture
def slow_verify(monkeypatch: pytest.MonkeyPatch) -> ConcurrentVerifications:
    return ConcurrentVerifications(monkeypatch, seconds=0.05)


def passwords(concurrency: int, queue_wait: timedelta) -> Passwords:
    return Passwords(
        time_cost=FAST_ARGON2["argon2_time_cost"],
        memory_cost_kib=FAST_ARGON2["argon2_memory_cost_kib"],
        parallelism=FAST_ARGON2["argon2_parallelism"],
        concurrency=concurrency,
        queue_wait=queue_wait,
    )


async def test_no_more_than_concurrency_verifications_run_at_once(slow_verify: ConcurrentVerifications) -> None:
    hashing = passwords(concurrency=2, queue_wait=timedelta(seconds=30))
    stored = await hashing.hash("correct horse battery")

    results = await asyncio.gather(*(hashing.verify(stored, f"guess {i}") for i in range(12)))

    assert results == [False] * 12
    assert slow_verify.total == 12
    assert slow_verify.most == 2


async def test_beyond_the_wait_a_verification_is_refused_busy_and_costs_nothing(
    slow_verify: ConcurrentVerifications,
) -> None:
    slow_verify.seconds = 0.3
    hashing = passwords(concurrency=1, queue_wait=timedelta(milliseconds=50))

    outcomes = await asyncio.gather(*(hashing.verify(None, "guess") for _ in range(3)), return_exceptions=True)

    assert outcomes[0] is False
    for refused in outcomes[1:]:
        assert isinstance(refused, ServerBusy)
        assert (refused.status_code, refused.retry_after) == (503, 1)
    assert slow_verify.total == 1


async def test_a_slot_is_given_back_whatever_happens(slow_verify: ConcurrentVerifications) -> None:
    hashing = passwords(concurrency=1, queue_wait=timedelta(0))
    stored = await hashing.hash("correct horse battery")

    assert not await hashing.verify("not a hash", "x")  # argon2 raises inside the slot
    assert await hashing.verify(stored, "correct horse battery")
    assert not await hashing.verify(stored, "wrong")


async def test_a_waiting_sign_in_gets_the_next_free_slot(slow_verify: ConcurrentVerifications) -> None:
    hashing = passwords(concurrency=1, queue_wait=timedelta(seconds=5))
    stored = await hashing.hash("correct horse battery")

    first, second = await asyncio.gather(
        hashing.verify(stored, "correct horse battery"), hashing.verify(stored, "correct horse battery")
    )

    assert (first, second) == (True, True)
    assert slow_verify.most == 1
