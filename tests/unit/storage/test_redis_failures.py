"""An outage of the KV store is counted on every failure but logged once per interval, and its end once."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from lfusys.storage.redis import KVFailures

DOWN = "redis unavailable; rate limits and caches fail open"
UP = "redis answers again"


class Stopwatch:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def exported_redis_failures() -> float:
    return REGISTRY.get_sample_value("lfusys_dependency_failures_total", {"dependency": "redis"}) or 0.0


def test_an_outage_is_logged_once_per_interval_and_every_failure_counted() -> None:
    watch = Stopwatch()
    failures = KVFailures(interval=timedelta(seconds=30), monotonic=watch)
    exported_before = exported_redis_failures()

    with capture_logs() as logs:
        for _ in range(100):
            failures.failed(ConnectionError("refused"))
        watch.now += 29
        failures.failed(TimeoutError())
        watch.now += 1
        failures.failed(TimeoutError())

    assert failures.total == 102
    assert exported_redis_failures() - exported_before == 102  # on /metrics too
    assert [(entry["event"], entry["error"], entry["failures"]) for entry in logs] == [
        (DOWN, "ConnectionError", 1),
        (DOWN, "TimeoutError", 102),
    ]
    assert logs[0]["log_level"] == "warning"


def test_the_end_of_a_reported_outage_is_logged_once() -> None:
    watch = Stopwatch()
    failures = KVFailures(monotonic=watch)

    with capture_logs() as logs:
        failures.answered()  # nothing was wrong
        failures.failed(ConnectionError())
        failures.answered()
        failures.answered()
        # Down again within the interval: counted, not logged, so its end is not logged either.
        failures.failed(ConnectionError())
        failures.answered()

    assert [entry["event"] for entry in logs] == [DOWN, UP]
    assert failures.total == 2
