"""lfusys.cache: cache-aside with generations, owner checks, single flight, jitter and failing open, on each
KV adapter (the process's own and Redis)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from lfusys.cache import JITTER, OwnedCache, generation_key, jittered, value_key
from lfusys.storage.memory.kv import MemoryKV
from lfusys.storage.ports import KV, KVUnavailable
from tests.conftest import Elapse
from tests.support import FakeClock

TTL = timedelta(hours=1)
KIND = "notes"
ADA, EVE = "ada", "eve"


class Note(msgspec.Struct, frozen=True):
    owner_id: str
    text: str


def cache_over(kv: KV, ttl: timedelta = TTL, draw: Callable[[], float] = lambda: 0.0) -> OwnedCache[Note]:
    return OwnedCache(
        kv, kind=KIND, value_type=Note, ttl=ttl, owned_by=lambda note, owner_id: note.owner_id == owner_id, draw=draw
    )


class Store:
    """The notes' store of record: counts its reads, and can hold a read after it has fetched."""

    def __init__(self) -> None:
        self.notes = {ADA: Note(ADA, "first"), EVE: Note(EVE, "eve's")}
        self.reads = 0
        self.fetched = asyncio.Event()
        self.release: asyncio.Event | None = None

    def loader(self, owner_id: str) -> Callable[[], Awaitable[Note]]:
        async def load() -> Note:
            self.reads += 1
            note = self.notes[owner_id]
            self.fetched.set()
            if self.release is not None:
                await self.release.wait()
            return note

        return load


async def test_a_miss_loads_and_later_reads_hit(kv: KV) -> None:
    cache, store = cache_over(kv), Store()

    first = await cache.get(ADA, "p", store.loader(ADA))
    second = await cache.get(ADA, "p", store.loader(ADA))

    assert first == second == Note(ADA, "first")
    assert store.reads == 1
    assert await cache.get(ADA, "other part", store.loader(ADA)) == first
    assert store.reads == 2  # each part is a value of its own


async def test_another_process_sees_the_cached_value(kv: KV) -> None:
    store = Store()
    await cache_over(kv).get(ADA, "p", store.loader(ADA))

    assert await cache_over(kv).get(ADA, "p", store.loader(ADA)) == Note(ADA, "first")
    assert store.reads == 1


async def test_a_change_made_in_any_process_is_seen_by_every_process(kv: KV) -> None:
    reader, writer, store = cache_over(kv), cache_over(kv), Store()
    await reader.get(ADA, "p", store.loader(ADA))

    store.notes[ADA] = Note(ADA, "second")
    await writer.changed(ADA)

    assert await reader.get(ADA, "p", store.loader(ADA)) == Note(ADA, "second")
    assert store.reads == 2


async def test_a_stale_fill_after_an_invalidation_is_never_served(kv: KV) -> None:
    """The classic race, held open on purpose: a reader fetches the old state, a writer changes the store
    and invalidates, and only then does the reader write the cache. The old state must not be served."""
    reader, writer, store = cache_over(kv), cache_over(kv), Store()
    store.release = asyncio.Event()
    held = asyncio.create_task(reader.get(ADA, "p", store.loader(ADA)))
    await store.fetched.wait()  # the reader holds the old state, not yet cached

    store.notes[ADA] = Note(ADA, "second")
    await writer.changed(ADA)
    store.release.set()
    store.release = None

    assert await held == Note(ADA, "first")  # it was read before the change: fine to answer with
    for cache in (reader, writer, cache_over(kv)):
        assert await cache.get(ADA, "p", store.loader(ADA)) == Note(ADA, "second")


async def test_a_change_in_this_process_is_not_answered_by_a_lookup_begun_before_it(kv: KV) -> None:
    cache, store = cache_over(kv), Store()
    store.release = asyncio.Event()
    held = asyncio.create_task(cache.get(ADA, "p", store.loader(ADA)))
    await store.fetched.wait()

    store.notes[ADA] = Note(ADA, "second")
    await cache.changed(ADA)
    release, store.release = store.release, None
    after = asyncio.create_task(cache.get(ADA, "p", store.loader(ADA)))
    release.set()

    assert await held == Note(ADA, "first")
    assert await after == Note(ADA, "second")


async def test_fifty_concurrent_misses_load_once(kv: KV) -> None:
    cache, store = cache_over(kv), Store()
    store.release = asyncio.Event()

    lookups = [asyncio.create_task(cache.get(ADA, "p", store.loader(ADA))) for _ in range(50)]
    await store.fetched.wait()
    for _ in range(20):  # every lookup gets as far as it can (Redis answers over a socket)
        await asyncio.sleep(0.005)
    store.release.set()

    assert await asyncio.gather(*lookups) == [Note(ADA, "first")] * 50
    assert store.reads == 1


async def test_a_caller_giving_up_does_not_cancel_the_lookup_others_await(kv: KV) -> None:
    cache, store = cache_over(kv), Store()
    store.release = asyncio.Event()
    first = asyncio.create_task(cache.get(ADA, "p", store.loader(ADA)))
    await store.fetched.wait()
    second = asyncio.create_task(cache.get(ADA, "p", store.loader(ADA)))
    await asyncio.sleep(0)

    first.cancel()
    store.release.set()

    assert await second == Note(ADA, "first")
    assert first.cancelled()
    assert store.reads == 1


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached(kv: KV) -> None:
    cache = cache_over(kv)
    calls = 0

    async def failing() -> Note:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("store down")

    results = await asyncio.gather(*(cache.get(ADA, "p", failing) for _ in range(3)), return_exceptions=True)

    assert all(isinstance(result, RuntimeError) for result in results)
    assert calls == 1
    assert await cache.get(ADA, "p", Store().loader(ADA)) == Note(ADA, "first")


async def test_owners_never_share_values(kv: KV) -> None:
    cache, store = cache_over(kv), Store()

    assert await cache.get(ADA, "p", store.loader(ADA)) == Note(ADA, "first")
    assert await cache.get(EVE, "p", store.loader(EVE)) == Note(EVE, "eve's")
    await cache.changed(EVE)
    assert await cache.get(ADA, "p", store.loader(ADA)) == Note(ADA, "first")
    assert store.reads == 2  # Eve's change did not touch Ada's value


async def _eves_key(kv: KV, cache: OwnedCache[Note], store: Store) -> str:
    """The key Eve's value ``p`` is read from (her generation started by a first read)."""
    await cache.get(EVE, "p", store.loader(EVE))
    generation = await kv.get(generation_key(KIND, EVE))
    assert generation is not None
    return value_key(KIND, EVE, generation.decode(), "p")


@pytest.mark.parametrize(
    "planted",
    [
        pytest.param([ADA, {"owner_id": ADA, "text": "ada's secret"}], id="ada's entry copied under eve's key"),
        pytest.param([EVE, {"owner_id": ADA, "text": "ada's secret"}], id="forged owner, ada's content"),
        pytest.param([ADA, {"owner_id": EVE, "text": "eve's"}], id="eve's content, another owner"),
        pytest.param("not an entry", id="malformed"),
        pytest.param([EVE, {"text": "missing fields"}], id="another shape"),
    ],
)
async def test_an_entry_that_is_not_the_owners_own_is_ignored(kv: KV, planted: Any) -> None:
    cache, store = cache_over(kv), Store()
    key = await _eves_key(kv, cache, store)
    await kv.set(key, json.dumps(planted).encode(), TTL)

    assert await cache.get(EVE, "p", store.loader(EVE)) == Note(EVE, "eve's")
    assert store.reads == 2  # read again from the store
    assert await cache.get(EVE, "p", store.loader(EVE)) == Note(EVE, "eve's")
    assert store.reads == 2  # and cached again, properly


async def test_a_value_expires_after_its_lifetime(kv: KV, elapse: Elapse) -> None:
    cache, store = cache_over(kv, draw=lambda: 0.5), Store()  # lives 95 % of TTL
    await cache.get(ADA, "p", store.loader(ADA))

    await elapse(TTL * 0.94)
    await cache.get(ADA, "p", store.loader(ADA))
    assert store.reads == 1
    await elapse(TTL * 0.02)
    await cache.get(ADA, "p", store.loader(ADA))
    assert store.reads == 2


def test_jitter_only_shortens_a_lifetime_by_at_most_a_tenth() -> None:
    assert JITTER == 0.1
    assert jittered(TTL, 0.0) == TTL
    assert jittered(TTL, 0.5) == TTL * 0.95
    lifetimes = [jittered(TTL, draw) for draw in (i / 1000 for i in range(1000))]
    assert all(TTL * 0.9 < lifetime <= TTL for lifetime in lifetimes)
    assert max(lifetimes) - min(lifetimes) > TTL * 0.09  # spread over the whole tenth


async def test_each_fill_draws_its_own_lifetime(clock: FakeClock) -> None:
    draws = itertools.chain([0.0, 0.99], itertools.repeat(0.0))
    cache, store = cache_over(MemoryKV(clock), draw=lambda: next(draws)), Store()
    await cache.get(ADA, "p", store.loader(ADA))  # lives TTL
    await cache.get(EVE, "p", store.loader(EVE))  # lives 90.1 % of TTL

    clock.advance(TTL * 0.95)
    await cache.get(ADA, "p", store.loader(ADA))
    await cache.get(EVE, "p", store.loader(EVE))
    assert store.reads == 3  # Eve's expired, Ada's did not


class DownKV:
    """A KV that does not answer (Redis down or too slow)."""

    def __init__(self) -> None:
        self.calls = 0

    async def _down(self, *args: object) -> Any:
        self.calls += 1
        raise KVUnavailable("no answer")

    get = set = set_if_absent = get_and_delete = delete = hit = _down


class WriteOnlyDownKV(MemoryKV):
    """Reads answer; writes do not."""

    async def set(self, key: str, value: bytes, ttl: timedelta) -> None:
        raise KVUnavailable("no answer")


async def test_a_kv_that_does_not_answer_means_reading_the_store(clock: FakeClock) -> None:
    down = DownKV()
    cache, store = cache_over(down), Store()

    assert await cache.get(ADA, "p", store.loader(ADA)) == Note(ADA, "first")
    store.notes[ADA] = Note(ADA, "second")
    await cache.changed(ADA)  # never raises
    assert await cache.get(ADA, "p", store.loader(ADA)) == Note(ADA, "second")
    assert store.reads == 2
    assert down.calls > 0

    cache, store = cache_over(WriteOnlyDownKV(clock)), Store()
    assert await cache.get(ADA, "p", store.loader(ADA)) == Note(ADA, "first")
    assert await cache.get(ADA, "p", store.loader(ADA)) == Note(ADA, "first")
    assert store.reads == 2  # nothing could be cached


async def test_a_lifetime_of_zero_turns_the_cache_off() -> None:
    down = DownKV()
    cache, store = cache_over(down, ttl=timedelta(0)), Store()

    for _ in range(3):
        assert await cache.get(ADA, "p", store.loader(ADA)) == Note(ADA, "first")
    await cache.changed(ADA)

    assert store.reads == 3
    assert down.calls == 0  # the KV is not even asked
