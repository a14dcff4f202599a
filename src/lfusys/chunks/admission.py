"""How many chunk bodies may stream in at once: a cap per user, checked before any byte is read.

Bytes in flight hold memory and disk until they are stored, and count against nothing else; the cap
keeps one user from taking the whole server. It is per process (each replica protects itself).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lfusys.errors import TooManyRequests

RETRY_AFTER_SECONDS = 1


class ChunkAdmission:
    def __init__(self, *, per_user: int) -> None:
        self._per_user = per_user
        self._in_flight: dict[str, int] = {}

    @contextlib.contextmanager
    def admit(self, user_id: str) -> Iterator[None]:
        """Hold a place for one chunk of ``user_id`` while it streams; 429 when the user has none left."""
        current = self._in_flight.get(user_id, 0)
        if current >= self._per_user:
            raise TooManyRequests(
                f"too many chunk uploads at once (at most {self._per_user}); try again shortly",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self._in_flight[user_id] = current + 1
        try:
            yield
        finally:
            remaining = self._in_flight[user_id] - 1
            if remaining:
                self._in_flight[user_id] = remaining
            else:
                del self._in_flight[user_id]
