"""How many chunk bodies may stream in at once, checked before any byte of a body is read.

A body in flight holds memory (on the local backend at most two 1 MiB blocks) and a connection
until it is stored. Two limits, both per process (each replica protects itself):

* ``per_user``: one user's chunks in flight; beyond it 429 (slow down, you are sending too much);
* ``total``: everyone's chunks in flight, sized from the memory available; beyond it 503 (the
  server is busy). The last ``reserve`` places are kept for users with no chunk in flight, so a
  crowd of uploads from a few users cannot lock everyone else out: a newcomer always gets one
  chunk in, and the busy users share the rest.

Both answers carry ``Retry-After``; every client of this API waits that long and sends the chunk
again. Nothing is read from a refused request's body, so nothing of it is stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lfusys.errors import ServerBusy, TooManyRequests

RETRY_AFTER_SECONDS = 1


class ChunkAdmission:
    def __init__(self, *, total: int, per_user: int, reserve: int | None = None) -> None:
        if total < 1 or per_user < 1:
            raise ValueError("the limits must be at least 1")
        self._total = total
        self._per_user = per_user
        self._reserve = max(1, total // 8) if reserve is None else min(reserve, total - 1)
        self._in_flight: dict[str, int] = {}
        self._count = 0
        self._admitted = 0

    @property
    def in_flight(self) -> int:
        """Chunk bodies streaming in right now."""
        return self._count

    @property
    def admitted(self) -> int:
        """Chunk bodies let in since start-up."""
        return self._admitted

    @contextlib.contextmanager
    def admit(self, user_id: str) -> Iterator[None]:
        """Hold a place for one chunk of ``user_id`` while it streams; refuse when there is none."""
        self._take(user_id)
        try:
            yield
        finally:
            self._release(user_id)

    @contextlib.contextmanager
    def admit_if_spare(self, user_id: str) -> Iterator[bool]:
        """Hold a place for one more chunk of ``user_id`` (True) if one is spare: the user holds less than
        half of their places, and the server has one free; else hold none (False). For work that goes on,
        more slowly, without it, and should not take the places the user's next requests will need."""
        if self._in_flight.get(user_id, 0) >= self._per_user // 2:
            yield False
            return
        try:
            self._take(user_id)
        except (TooManyRequests, ServerBusy):
            yield False
            return
        try:
            yield True
        finally:
            self._release(user_id)

    def _take(self, user_id: str) -> None:
        current = self._in_flight.get(user_id, 0)
        if current >= self._per_user:
            raise TooManyRequests(
                f"too many chunk uploads at once (at most {self._per_user}); try again shortly",
                retry_after=RETRY_AFTER_SECONDS,
            )
        open_to_user = self._total if current == 0 else self._total - self._reserve
        if self._count >= open_to_user:
            raise ServerBusy(
                "the server is receiving as many chunks as it can; try again shortly",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self._in_flight[user_id] = current + 1
        self._count += 1
        self._admitted += 1

    def _release(self, user_id: str) -> None:
        self._count -= 1
        remaining = self._in_flight[user_id] - 1
        if remaining:
            self._in_flight[user_id] = remaining
        else:
            del self._in_flight[user_id]
