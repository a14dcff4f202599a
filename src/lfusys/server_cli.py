"""The server's commands (``serve``, ``worker``, ``migrate``, ``dead-letters``, ``uploads``), imported by
:mod:`lfusys.cli` only when one of them runs, so the client commands start without the server stack."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import structlog
import uvicorn

from lfusys.clock import utc_now
from lfusys.observability.logging import configure_logging
from lfusys.observability.metrics import MULTIPROCESS_DIR_VARIABLE, prepare_multiprocess_dir
from lfusys.services import background_work, open_services
from lfusys.sessions.records import UploadSession, UploadStatus
from lfusys.settings import Settings, SettingsError, load_settings
from lfusys.storage.backend import migrate, prepare, server_keys
from lfusys.storage.ports import Backend, BackendNotReady, DeadLetter

_DEAD_LETTERS_SHOWN = 1000

_T = TypeVar("_T")

log = structlog.get_logger(__name__)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"lfusys: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        return _run(args, settings)
    except BackendNotReady as exc:
        print(f"lfusys: {exc}", file=sys.stderr)
        return 2


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    if settings.core.backend == "memory" and args.workers != 1:
        # Each process would hold its own, separate data.
        print("lfusys: the memory backend runs with one server process (--workers 1)", file=sys.stderr)
        return 2
    if args.workers > 1 and settings.kv.redis_url is None and not settings.kv.allow_process_kv:
        # (The aws backend's replicas are held to the same rule by the settings check.)
        print(
            f"lfusys: --workers {args.workers} without Redis gives each process its own rate limits, caches and "
            "one-time state: set REDIS_URL, or LFUSYS_ALLOW_PROCESS_KV=true to accept that",
            file=sys.stderr,
        )
        return 2
    # Create the keys and the schema once, before any server process starts.
    server_keys(settings)
    asyncio.run(prepare(settings))
    if settings.core.backend == "memory":
        log.warning("memory backend: every upload, file and account is lost when the server stops")
    if args.workers > 1 and MULTIPROCESS_DIR_VARIABLE not in os.environ:
        # Every server process counts into files there, and /metrics adds them up.
        with tempfile.TemporaryDirectory(prefix="lfusys-metrics-") as metrics_dir:
            prepare_multiprocess_dir(Path(metrics_dir))
            _run_uvicorn(settings, args)
    else:
        _run_uvicorn(settings, args)
    return 0


def _run_uvicorn(settings: Settings, args: argparse.Namespace) -> None:
    uvicorn.run(
        "lfusys.app:create_app",
        factory=True,
        host=args.host or settings.core.host,
        port=args.port if args.port is not None else settings.core.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        # The app resolves X-Forwarded-For and X-Forwarded-Proto itself (lfusys.forwarded), so it answers
        # the same under uvicorn and under the test client. uvicorn must not rewrite them first: the app
        # would see the client uvicorn picked where the proxy's address was, so it could no longer check
        # that the peer is a trusted proxy, and uvicorn's rules differ (it trusts 127.0.0.1 unless told
        # otherwise, and takes a hop that is no address at all for the client).
        proxy_headers=False,
        timeout_graceful_shutdown=30,
    )


async def _work(settings: Settings) -> None:
    """Run the background work until SIGINT or SIGTERM, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with open_services(settings, server_keys(settings), utc_now) as services, background_work(services):
        log.info("worker started")
        await stop.wait()
    log.info("worker stopped")


async def _on_backend(settings: Settings, use: Callable[[Backend], Awaitable[_T]]) -> _T:
    async with open_services(settings, server_keys(settings), utc_now) as services:
        return await use(services.backend)


async def _dead_letters(settings: Settings) -> list[DeadLetter]:
    return await _on_backend(settings, lambda backend: backend.queue.dead_letters(_DEAD_LETTERS_SHOWN))


async def _listed_uploads(settings: Settings, status: str, limit: int, now: datetime) -> list[UploadSession]:
    def listed(backend: Backend) -> Awaitable[list[UploadSession]]:
        if status == "stalled":
            return backend.uploads.stalled(now, now - settings.queue.stalled_after, limit)
        return backend.uploads.by_status(UploadStatus(status), limit)

    return await _on_backend(settings, listed)


def _uploads(settings: Settings, args: argparse.Namespace) -> int:
    now = utc_now()
    sessions = asyncio.run(_listed_uploads(settings, args.status, args.limit, now))
    if args.json:
        for session in sessions:
            listed: dict[str, Any] = msgspec.to_builtins(session)
            listed["age_seconds"] = round((now - session.updated_at).total_seconds(), 3)
            print(msgspec.json.encode(listed).decode())
        return 0
    if not sessions:
        print(f"no {args.status} uploads", file=sys.stderr)
        return 0
    rows = [[s.id, s.owner_id, s.file_name, str(s.file_size), s.status.value, _state_of(s, now)] for s in sessions]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]))
    return 0


def _state_of(session: UploadSession, now: datetime) -> str:
    """How long the session has been as it is, and why, in a few words."""
    since = _age(now - session.updated_at)
    if session.status is UploadStatus.FAILED:
        return f"failed {since} ago: {session.failure_reason or 'no reason given'}"
    if session.status is UploadStatus.FINALIZING:
        lease = session.lease_expires_at
        if lease is not None and lease < now:
            held = f"lease of {session.lease_owner} lapsed {_age(now - lease)} ago"
        else:
            held = f"lease of {session.lease_owner} until {lease.isoformat(timespec='seconds') if lease else '?'}"
        return f"finalizing for {since} (attempt {session.finalize_attempts}), {held}"
    return (
        f"idle for {since}, {session.recorded_chunks} of {session.total_chunks} chunks recorded,"
        f" {session.stored_chunks} stored"
    )


def _age(delta: timedelta) -> str:
    """``3d4h``, ``2h5m``, ``5m12s``, ``12s``."""
    seconds = max(int(delta.total_seconds()), 0)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    first = next((i for i, (amount, _) in enumerate(parts) if amount), len(parts) - 1)
    return "".join(f"{amount}{unit}" for amount, unit in parts[first : first + 2])


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "worker":
        if settings.core.backend == "memory":
            print("lfusys: the memory backend's queue lives in its server process; run lfusys serve", file=sys.stderr)
            return 2
        asyncio.run(_work(settings))
        return 0
    if args.command == "uploads":
        return _uploads(settings, args)
    if args.command == "dead-letters" and args.redrive:
        ids = args.ids
        redriven = asyncio.run(_on_backend(settings, lambda backend: backend.queue.redrive(ids)))
        print(f"redriven {redriven} dead letter(s) to the queue")
        return 0
    if args.command == "dead-letters":
        for letter in asyncio.run(_dead_letters(settings)):
            print(msgspec.json.encode(letter).decode())
        return 0
    applied = asyncio.run(migrate(settings))
    if settings.core.backend == "aws":
        print("\n".join(applied))
        return 0
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0
