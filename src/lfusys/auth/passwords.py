"""argon2id password hashing, run in worker threads so it never blocks the event loop."""

from __future__ import annotations

import secrets

import anyio.to_thread
from anyio import CapacityLimiter
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism)
        # Each hash holds memory_cost KiB while it runs; two at a time keep both cores busy.
        self._limiter = CapacityLimiter(2)
        # Verified against when there is no real hash, so a failed login costs the same either way.
        self._decoy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Check ``password``; with no stored hash, do the same work against a decoy and fail."""
        target = stored_hash if stored_hash is not None else self._decoy_hash
        try:
            await anyio.to_thread.run_sync(self._hasher.verify, target, password, limiter=self._limiter)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
