"""The KV port on Redis: values with ``SET … PX``, one-time state with ``SET NX``/``GETDEL``, and window
counters made and given their expiry by one script.

Values and counters live apart, as in :class:`~lfusys.storage.memory.kv.MemoryKV`:
``{prefix}value:{key}`` and ``{prefix}count:{key}``. Each call waits at most the configured timeout
(connecting included, and never retried); any failure is raised as
:class:`~lfusys.storage.ports.KVUnavailable` and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from lfusys.settings import KVSettings
from lfusys.storage.ports import KVUnavailable, WindowCount
from lfusys.storage.redis.failures import KVFailures

T = TypeVar("T")

MAX_CONNECTIONS = 64
"""Connections one process keeps to Redis; a call that finds none free waits (within its timeout)."""

# INCR makes the counter; the first event of a window (a counter without expiry) starts the window.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


def _milliseconds(duration: timedelta) -> int:
    """Whole milliseconds, rounded up, at least one (Redis refuses a zero lifetime)."""
    return max(1, math.ceil(duration / timedelta(milliseconds=1)))


def _as_bytes(value: bytes | str | None) -> bytes | None:
    # The client does not decode responses: a value comes back as the bytes it was stored as.
    return value.encode() if isinstance(value, str) else value


class RedisKV:
    def __init__(self, client: Redis, prefix: str, timeout: timedelta, failures: KVFailures) -> None:
        self._client = client
        self.prefix = prefix
        """Every key this KV stores starts with it."""
        self._timeout = timeout.total_seconds()
        self.failures = failures
        self._hit = client.register_script(_HIT)

    def _value(self, key: str) -> str:
        return f"{self.prefix}value:{key}"

    def _counter(self, key: str) -> str:
        return f"{self.prefix}count:{key}"

    async def _call(self, command: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                result = await command()
        except (RedisError, OSError, TimeoutError) as exc:
            self.failures.failed(exc)
            raise KVUnavailable(f"redis did not answer: {type(exc).__name__}") from exc
        self.failures.answered()
        return result

    async def ping(self) -> None:
        """Return if Redis answers within the timeout; raise :class:`KVUnavailable` otherwise."""
        await self._call(lambda: self._client.ping())

    async def get(self, key: str) -> bytes | None:
        return _as_bytes(await self._call(lambda: self._client.get(self._value(key))))

    async def set(self, key: str, value: bytes, ttl: timedelta) -> None:
        await self._call(lambda: self._client.set(self._value(key), value, px=_milliseconds(ttl)))

    async def set_if_absent(self, key: str, value: bytes, ttl: timedelta) -> bool:
        stored = await self._call(lambda: self._client.set(self._value(key), value, px=_milliseconds(ttl), nx=True))
        return bool(stored)

    async def get_and_delete(self, key: str) -> bytes | None:
        return _as_bytes(await self._call(lambda: self._client.getdel(self._value(key))))

    async def delete(self, key: str) -> None:
        await self._call(lambda: self._client.delete(self._value(key), self._counter(key)))

    async def hit(self, key: str, window: timedelta) -> WindowCount:
        count, left = await self._call(lambda: self._hit(keys=[self._counter(key)], args=[_milliseconds(window)]))
        return WindowCount(count=int(count), resets_in=timedelta(milliseconds=max(0, int(left))))


@contextlib.asynccontextmanager
async def open_redis_kv(settings: KVSettings, failures: KVFailures | None = None) -> AsyncIterator[RedisKV]:
    """A :class:`RedisKV` on ``settings.redis_url`` (which must be set), closed on exit.

    Redis need not answer yet: it is an optional dependency, and the first failures are logged.
    """
    if settings.redis_url is None:
        raise ValueError("no Redis URL is configured")
    timeout = settings.redis_timeout.total_seconds()
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    client = Redis.from_pool(pool)
    kv = RedisKV(client, settings.redis_prefix, settings.redis_timeout, failures or KVFailures())
    try:
        with contextlib.suppress(KVUnavailable):
            await kv.ping()
        yield kv
    finally:
        await client.aclose()
