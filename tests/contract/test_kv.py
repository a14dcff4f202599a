"""The behaviour every KV adapter must have (rate limits, caches and one-time state rely on it)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from lfusys.storage.ports import KV
from tests.conftest import Elapse

MINUTE = timedelta(minutes=1)


async def test_a_value_lives_until_its_ttl(kv: KV, elapse: Elapse) -> None:
    await kv.set("k", b"v", MINUTE)

    assert await kv.get("k") == b"v"
    await elapse(MINUTE + timedelta(seconds=1))
    assert await kv.get("k") is None
    assert await kv.get("never-set") is None


async def test_set_replaces_and_delete_removes(kv: KV) -> None:
    await kv.set("k", b"one", MINUTE)
    await kv.set("k", b"two", MINUTE)
    assert await kv.get("k") == b"two"

    await kv.delete("k")
    await kv.delete("k")  # harmless

    assert await kv.get("k") is None


async def test_set_if_absent_stores_only_once_until_the_value_expires(kv: KV, elapse: Elapse) -> None:
    assert await kv.set_if_absent("k", b"first", MINUTE)
    assert not await kv.set_if_absent("k", b"second", MINUTE)
    assert await kv.get("k") == b"first"

    await elapse(MINUTE * 2)
    assert await kv.set_if_absent("k", b"third", MINUTE)


async def test_of_concurrent_takers_exactly_one_gets_the_value(kv: KV) -> None:
    await kv.set("state", b"once", MINUTE)

    taken = await asyncio.gather(*(kv.get_and_delete("state") for _ in range(10)))

    assert taken.count(b"once") == 1
    assert taken.count(None) == 9
    assert await kv.get("state") is None


async def test_a_counter_counts_within_its_window_and_starts_again_after(kv: KV, elapse: Elapse) -> None:
    first = await kv.hit("ip:1", MINUTE)
    await elapse(timedelta(seconds=20))
    second = await kv.hit("ip:1", MINUTE)
    other = await kv.hit("ip:2", MINUTE)

    assert (first.count, second.count, other.count) == (1, 2, 1)
    assert first.resets_in == MINUTE
    assert timedelta(seconds=39) <= second.resets_in <= timedelta(seconds=40)

    await elapse(timedelta(seconds=41))
    assert (await kv.hit("ip:1", MINUTE)).count == 1


async def test_concurrent_hits_are_all_counted(kv: KV) -> None:
    counts = await asyncio.gather(*(kv.hit("burst", MINUTE) for _ in range(50)))

    assert sorted(hit.count for hit in counts) == list(range(1, 51))


async def test_values_are_kept_byte_for_byte(kv: KV) -> None:
    value = bytes(range(256))
    await kv.set("bytes", value, MINUTE)

    assert await kv.get("bytes") == value
    assert await kv.get_and_delete("bytes") == value


async def test_delete_also_starts_a_counter_again(kv: KV) -> None:
    await kv.hit("ip:1", MINUTE)
    await kv.hit("ip:1", MINUTE)

    await kv.delete("ip:1")

    again = await kv.hit("ip:1", MINUTE)
    assert (again.count, again.resets_in) == (1, MINUTE)
