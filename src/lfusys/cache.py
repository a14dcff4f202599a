"""Cache-aside over the KV port, for small values that each belong to one user.

A value is read from the KV, or else loaded from its store and written to the KV for a while. Three
rules keep that safe:

- **Generations, so invalidation survives races.** Each owner has a generation key holding a random
  token; values live under keys that name the token. A writer changes the store first and then puts a
  new token in place (:meth:`OwnedCache.changed`). A reader takes the token *before* it loads from the
  store, so a reader that loaded the old state can only write it under the old token, which nobody
  reads any more: a stale fill right after an invalidation is orphaned, never served. Tokens are
  random, never counted up, so a generation key that expires or is evicted cannot bring an old
  generation back.
- **Never another user's value.** The owner's id is in every key and stored with every value; a value
  whose stored owner (or whose content, per ``owned_by``) is someone else is ignored.
- **Fail open.** If the KV does not answer (:class:`~lfusys.storage.ports.KVUnavailable`) the value
  is loaded from the store and nothing is written; the caller never sees the error. An invalidation
  the KV does not take (asked twice) is logged, and the values it should have ended may be served until
  they expire: their lifetime bounds that.

Concurrent misses for one value in one process load it once (single flight): the first starts the
lookup as a task, the others await the same task.

The lifetime of each value is shortened by up to :data:`JITTER` at random (never lengthened, so the
configured lifetime stays an upper bound on staleness), so values filled together do not all expire
together.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Generic, TypeVar

import msgspec
import structlog

from lfusys.storage.ports import KV, KVUnavailable

log = structlog.get_logger(__name__)

T = TypeVar("T")

JITTER = 0.1
"""At most this fraction of a value's lifetime is taken off at random."""


class _Entry(msgspec.Struct, frozen=True, array_like=True):
    owner: str
    value: msgspec.Raw


def generation_key(kind: str, owner_id: str) -> str:
    """Where the owner's generation token for values of ``kind`` is kept."""
    return f"cache:{kind}:gen:{owner_id}"


def value_key(kind: str, owner_id: str, generation: str, part: str) -> str:
    """Where the owner's value ``part`` of ``kind`` is kept in ``generation``."""
    return f"cache:{kind}:{owner_id}:{generation}:{part}"


def jittered(ttl: timedelta, draw: float) -> timedelta:
    """``ttl`` shortened by ``JITTER * draw`` of itself (``draw`` in [0, 1))."""
    return ttl * (1 - JITTER * draw)


class OwnedCache(Generic[T]):
    """Values of one kind, each belonging to one user, cached beside the store that holds them.

    Keys: :func:`generation_key` holds the owner's generation token; a value is kept under
    :func:`value_key` (``part`` tells apart the owner's values of this kind, e.g. page sizes). A ``ttl``
    of zero turns the cache off: every read loads from the store.
    """

    def __init__(
        self,
        kv: KV,
        *,
        kind: str,
        value_type: type[T],
        ttl: timedelta,
        owned_by: Callable[[T, str], bool],
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._kv = kv
        self._kind = kind
        self._ttl = ttl
        self._owned_by = owned_by
        self._draw = draw
        self._encoder = msgspec.json.Encoder()
        self._entries = msgspec.json.Decoder(_Entry)
        self._values = msgspec.json.Decoder(value_type)
        self._flights: dict[tuple[str, str], asyncio.Task[T]] = {}

    @property
    def enabled(self) -> bool:
        return self._ttl > timedelta(0)

    async def get(self, owner_id: str, part: str, load: Callable[[], Awaitable[T]]) -> T:
        """The owner's value ``part``: from the cache, or else from ``load()`` (then cached)."""
        if not self.enabled:
            return await load()
        flight = self._flights.get((owner_id, part))
        if flight is None:
            flight = asyncio.ensure_future(self._read_through(owner_id, part, load))
            self._flights[(owner_id, part)] = flight
            flight.add_done_callback(partial(self._landed, (owner_id, part)))
        # Shielded: one caller giving up (a client gone) must not cancel the lookup the others await.
        return await asyncio.shield(flight)

    async def changed(self, owner_id: str) -> None:
        """Call after every write to the store that changes any of the owner's values (after it, never
        before: see the module's docstring). Never raises."""
        if not self.enabled:
            return
        # Lookups already under way in this process may have read the old state: later callers start anew.
        for flight in [flight for flight in self._flights if flight[0] == owner_id]:
            del self._flights[flight]
        # Shielded: the write is done, so its invalidation must be too, even if the caller is cancelled.
        await asyncio.shield(self._new_generation(owner_id))

    async def _new_generation(self, owner_id: str) -> None:
        # Once more if the KV does not answer: a lost invalidation is served until the values expire (a
        # late one is always safe: it only orphans values).
        for attempt in (1, 2):
            try:
                await self._kv.set(
                    generation_key(self._kind, owner_id), secrets.token_hex(8).encode(), self._generation_ttl
                )
                return
            except KVUnavailable:
                if attempt == 2:
                    log.warning("cache invalidation lost: the KV did not answer", kind=self._kind, owner_id=owner_id)

    @property
    def _generation_ttl(self) -> timedelta:
        # Outlives the values filled under it (each lives at most one ttl after its fill).
        return self._ttl * 2

    def _landed(self, flight: tuple[str, str], task: asyncio.Task[T]) -> None:
        if self._flights.get(flight) is task:
            del self._flights[flight]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every caller has gone

    async def _read_through(self, owner_id: str, part: str, load: Callable[[], Awaitable[T]]) -> T:
        try:
            generation = await self._generation(owner_id)
            key = None if generation is None else value_key(self._kind, owner_id, generation, part)
            cached = None if key is None else await self._kv.get(key)
        except KVUnavailable:
            # Debug only: the KV's own failure count and readiness tell of an outage, not every request.
            log.debug("cache skipped: the KV did not answer", kind=self._kind)
            return await load()
        if cached is not None:
            value = self._decoded(owner_id, cached)
            if value is not None:
                return value
        value = await load()
        if key is not None:
            try:
                await self._kv.set(key, self._encoded(owner_id, value), jittered(self._ttl, self._draw()))
            except KVUnavailable:
                log.debug("cache not filled: the KV did not answer", kind=self._kind)
        return value

    async def _generation(self, owner_id: str) -> str | None:
        """The owner's current generation token, starting one if there is none (``None``: the KV lost
        it as soon as it was made; do not cache this time)."""
        key = generation_key(self._kind, owner_id)
        token = await self._kv.get(key)
        if token is None:
            fresh = secrets.token_hex(8).encode()
            # A writer or another reader may get there first: then theirs is the one.
            token = fresh if await self._kv.set_if_absent(key, fresh, self._generation_ttl) else await self._kv.get(key)
        return None if token is None else token.decode()

    def _encoded(self, owner_id: str, value: T) -> bytes:
        return self._encoder.encode(_Entry(owner=owner_id, value=msgspec.Raw(self._encoder.encode(value))))

    def _decoded(self, owner_id: str, data: bytes) -> T | None:
        """The cached value, if it is well formed and the owner's; ``None`` means a miss."""
        try:
            entry = self._entries.decode(data)
            value = self._values.decode(entry.value)
        except msgspec.DecodeError:
            log.warning("cache entry unreadable; ignored", kind=self._kind)
            return None
        if entry.owner != owner_id or not self._owned_by(value, owner_id):
            log.error("cache entry of another owner; ignored", kind=self._kind, owner_id=owner_id)
            return None
        return value
