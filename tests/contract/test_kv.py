"""The behaviour every KV adapter must have (rate limits, caches and one-time state rely on it)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from lfusys.storage.ports import Backend
from tests.support import FakeClock

MINUTE = timedelta(minutes=1)


async def test_a_value_lives_until_its_ttl(backend: Backend, clock: FakeClock) -> None:
    await backend.kv.set("k", b"v", MINUTE)

    assert await backend.kv.get("k") == b"v"
    clock.advance(MINUTE + timedelta(seconds=1))
    assert await backend.kv.get("k") is None
    assert await backend.kv.get("never-set") is None


async def test_set_replaces_and_delete_removes(backend: Backend) -> None:
    await backend.kv.set("k", b"one", MINUTE)
    await backend.kv.set("k", b"two", MINUTE)
    assert await backend.kv.get("k") == b"two"

    await backend.kv.delete("k")
    await backend.kv.delete("k")  # harmless

    assert await backend.kv.get("k") is None


async def test_set_if_absent_stores_only_once_until_the_value_expires(backend: Backend, clock: FakeClock) -> None:
    assert await backend.kv.set_if_absent("k", b"first", MINUTE)
    assert not await backend.kv.set_if_absent("k", b"second", MINUTE)
    assert await backend.kv.get("k") == b"first"

    clock.advance(MINUTE * 2)
    assert await backend.kv.set_if_absent("k", b"third", MINUTE)


async def test_of_concurrent_takers_exactly_one_gets_the_value(backend: Backend) -> None:
    await backend.kv.set("state", b"once", MINUTE)

    taken = await asyncio.gather(*(backend.kv.get_and_delete("state") for _ in range(10)))

    assert taken.count(b"once") == 1
    assert taken.count(None) == 9
    assert await backend.kv.get("state") is None


async def test_a_counter_counts_within_its_window_and_starts_again_after(backend: Backend, clock: FakeClock) -> None:
    first = await backend.kv.hit("ip:1", MINUTE)
    clock.advance(timedelta(seconds=20))
    second = await backend.kv.hit("ip:1", MINUTE)
    other = await backend.kv.hit("ip:2", MINUTE)

    assert (first.count, second.count, other.count) == (1, 2, 1)
    assert first.resets_in == MINUTE
    assert timedelta(seconds=39) <= second.resets_in <= timedelta(seconds=40)

    clock.advance(timedelta(seconds=41))
    assert (await backend.kv.hit("ip:1", MINUTE)).count == 1


async def test_concurrent_hits_are_all_counted(backend: Backend) -> None:
    counts = await asyncio.gather(*(backend.kv.hit("burst", MINUTE) for _ in range(50)))

    assert sorted(hit.count for hit in counts) == list(range(1, 51))
