"""Prometheus metrics: HTTP requests (Litestar's Prometheus middleware, labelled by route template) and
what the upload pipeline does (these counters, updated where it happens).

Label values are bounded: route templates, methods, status codes and the fixed words below — never a
raw path, an id or a user. With ``lfusys serve --workers N`` each process writes its values to files
in ``PROMETHEUS_MULTIPROC_DIR`` (set by the CLI before the processes start) and ``/metrics`` adds them
up, whichever process answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import shutil
from pathlib import Path
from typing import Any

import structlog
from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from lfusys.errors import NotAuthenticated
from lfusys.storage.ports import EventQueue

log = structlog.get_logger(__name__)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"

_KiB = 1024
_SIZE_BUCKETS = tuple(float(_KiB * 4**power) for power in range(16))  # 1 KiB … 1 TiB
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

UPLOAD_EVENTS = ("started", "completed", "failed", "expired", "cancelled")
UPLOADS = Counter("lfusys_uploads", "Upload sessions, by what happened to them", ["event"])
BYTES_RECEIVED = Counter("lfusys_bytes_received", "Bytes of chunks stored (each chunk counted once)")
CHUNK_PUT_SECONDS = Histogram(
    "lfusys_chunk_put_duration_seconds", "Time to receive, check and store one chunk", buckets=_SECONDS_BUCKETS
)
FINALIZE_SECONDS = Histogram(
    "lfusys_finalize_duration_seconds", "Time to assemble an upload's chunks into its file", buckets=_SECONDS_BUCKETS
)
FILE_SIZE_BYTES = Histogram("lfusys_file_size_bytes", "Size of each file made", buckets=_SIZE_BUCKETS)
QUEUE_MESSAGES = Gauge(
    "lfusys_event_queue_messages",
    "Storage events waiting (queue=main), received and not yet handled (queue=in_flight) or given up on"
    " (queue=dead_letter), as last sampled",
    ["queue"],
    multiprocess_mode="livemostrecent",
)
EVENT_AGE_SECONDS = Gauge(
    "lfusys_event_age_seconds",
    "Age of the oldest storage event in the last batch handled (how far behind the worker is)",
    multiprocess_mode="livemax",
)
RATE_LIMITED = Counter("lfusys_rate_limit_rejections", "Requests refused by a rate limit", ["limit"])
DEPENDENCY_FAILURES = Counter(
    "lfusys_dependency_failures",
    "Calls to a backing service that failed: redis (the request went on without it) or aws (retried)",
    ["dependency"],
)


QUEUE_SAMPLE_INTERVAL = 15.0
"""Seconds between two looks at the queue's depth."""


async def sample_queue_depth(queue: EventQueue, stop: asyncio.Event, every: float = QUEUE_SAMPLE_INTERVAL) -> None:
    """Keep :data:`QUEUE_MESSAGES` up to date until ``stop`` is set (a failed look is skipped)."""
    while not stop.is_set():
        try:
            depth = await queue.depth()
        except Exception:
            log.warning("the event queue's depth could not be read", exc_info=True)
        else:
            QUEUE_MESSAGES.labels("main").set(depth.visible)
            QUEUE_MESSAGES.labels("in_flight").set(depth.in_flight)
            QUEUE_MESSAGES.labels("dead_letter").set(depth.dead_letters)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


def prepare_multiprocess_dir(directory: Path) -> None:
    """Empty ``directory`` and name it for every process started after this (``--workers N``)."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(directory)


def http_metrics() -> PrometheusConfig:
    """Requests by route template, method and status, with their durations."""
    return PrometheusConfig(
        app_name="lfusys",
        prefix="lfusys_http",
        group_path=True,
        exclude_unhandled_paths=True,
        exclude=[f"^{METRICS_PATH}$", "^/health/", "^/assets/"],
    )


def _registry() -> CollectorRegistry:
    if MULTIPROCESS_DIR_VARIABLE not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def metrics_endpoint(token: str | None) -> Any:
    """``GET /metrics`` in Prometheus' text format; with ``token``, only for ``Authorization: Bearer``
    that token (401 otherwise)."""

    def bearer_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if token is None:
            return
        scheme, __, given = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise NotAuthenticated("metrics need the bearer token")

    @get(METRICS_PATH, guards=[bearer_token], include_in_schema=False, sync_to_thread=False)
    def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
        return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)

    return metrics
