"""The KV port in one process's memory: for the memory backend, and for the local backend's single process."""

from __future__ import annotations

from datetime import datetime, timedelta

from lfusys.clock import Clock
from lfusys.storage.ports import WindowCount

_PURGE_EVERY = 1024  # writes between sweeps of expired entries, so memory stays bounded


class MemoryKV:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._values: dict[str, tuple[bytes, datetime]] = {}
        self._counters: dict[str, tuple[int, datetime]] = {}
        self._writes = 0

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY:
            return
        now = self._clock()
        self._values = {k: v for k, v in self._values.items() if v[1] > now}
        self._counters = {k: c for k, c in self._counters.items() if c[1] > now}

    def _live(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at <= self._clock():
            del self._values[key]
            return None
        return value

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl: timedelta) -> None:
        self._values[key] = (value, self._clock() + ttl)
        self._wrote()

    async def set_if_absent(self, key: str, value: bytes, ttl: timedelta) -> bool:
        # No await between the look and the write: atomic on the event loop.
        if self._live(key) is not None:
            return False
        self._values[key] = (value, self._clock() + ttl)
        self._wrote()
        return True

    async def get_and_delete(self, key: str) -> bytes | None:
        value = self._live(key)
        self._values.pop(key, None)
        return value

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._counters.pop(key, None)

    async def hit(self, key: str, window: timedelta) -> WindowCount:
        now = self._clock()
        count, resets_at = self._counters.get(key, (0, now))
        if resets_at <= now:
            count, resets_at = 0, now + window
        count += 1
        self._counters[key] = (count, resets_at)
        self._wrote()
        return WindowCount(count=count, resets_in=resets_at - now)
