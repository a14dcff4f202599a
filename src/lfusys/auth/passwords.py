"""argon2id password hashing, run in worker threads so it never blocks the event loop.

Each hash or verification holds a core and ``memory_cost`` KiB while it runs, so one process runs at
most ``concurrency`` of them at once. The others wait in line, but only for ``queue_wait``: past that a
sign-in is answered 503 with ``Retry-After: 1``, so a flood of sign-ins is shed at once instead of
queueing without end (and making every honest sign-in wait behind it).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lfusys.errors import ServerBusy

RETRY_AFTER_SECONDS = 1

T = TypeVar("T")


class Passwords:
    def __init__(
        self,
        *,
        time_cost: int,
        memory_cost_kib: int,
        parallelism: int,
        concurrency: int,
        queue_wait: timedelta,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism)
        self._slots = asyncio.Semaphore(concurrency)
        self._queue_wait = queue_wait.total_seconds()
        # Threads of their own, as many as there are slots: hashes never wait for threads other work holds.
        self._threads = CapacityLimiter(concurrency)
        # Verified against when there is no real hash, so a failed login costs the same either way.
        self._decoy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Check ``password``; with no stored hash, do the same work against a decoy and fail."""
        target = stored_hash if stored_hash is not None else self._decoy_hash
        try:
            await self._run(self._hasher.verify, target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        await self._take_slot()
        try:
            return await anyio.to_thread.run_sync(work, *args, limiter=self._threads)
        finally:
            self._slots.release()

    async def _take_slot(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # free: taken at once, without waiting
            return
        try:
            # wait_for, not asyncio.timeout: a slot granted just as the wait runs out is kept and used
            # (wait_for returns it), never lost.
            await asyncio.wait_for(self._slots.acquire(), self._queue_wait)
        except TimeoutError:
            raise ServerBusy("too many sign-ins at once; try again shortly", retry_after=RETRY_AFTER_SECONDS) from None
