"""Counting the KV store's failures, and telling the log about an outage without flooding it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import structlog

from lfusys.observability.metrics import DEPENDENCY_FAILURES

log = structlog.get_logger(__name__)

LOG_INTERVAL = timedelta(seconds=30)


class KVFailures:
    """Every call to the KV store that failed, counted in :attr:`total` (for tests and metrics).

    An outage is logged at most once per :data:`LOG_INTERVAL` (a store that is down fails every
    request), and its end once, when the store answers again.
    """

    def __init__(self, interval: timedelta = LOG_INTERVAL, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.total = 0
        self._interval = interval.total_seconds()
        self._monotonic = monotonic
        self._logged_at: float | None = None
        self._reported_down = False

    def failed(self, error: BaseException) -> None:
        self.total += 1
        DEPENDENCY_FAILURES.labels("redis").inc()
        now = self._monotonic()
        if self._logged_at is not None and now - self._logged_at < self._interval:
            return
        self._logged_at = now
        self._reported_down = True
        log.warning(
            "redis unavailable; rate limits and caches fail open", error=type(error).__name__, failures=self.total
        )

    def answered(self) -> None:
        if self._reported_down:
            self._reported_down = False
            log.info("redis answers again", failures=self.total)
