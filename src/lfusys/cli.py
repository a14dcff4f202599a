"""``lfusys``: serve | worker | migrate | dead-letters | --version."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path

import msgspec
import structlog
import uvicorn

from lfusys import __version__
from lfusys.clock import utc_now
from lfusys.observability.logging import configure_logging
from lfusys.observability.metrics import MULTIPROCESS_DIR_VARIABLE, prepare_multiprocess_dir
from lfusys.services import background_work, open_services
from lfusys.settings import Settings, SettingsError, load_settings
from lfusys.storage.backend import migrate, prepare, server_keys
from lfusys.storage.ports import BackendNotReady, DeadLetter

_DEAD_LETTERS_SHOWN = 1000

log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfusys", description=__doc__)
    parser.add_argument("--version", action="version", version=f"lfusys {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web server (and the background worker)")
    serve.add_argument("--host", help="address to bind (default: LFUSYS_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (default: LFUSYS_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="server processes (default: 1)")

    commands.add_parser("worker", help="run only the event worker and janitor (no web server)")
    commands.add_parser(
        "migrate", help="apply pending database migrations (aws: create or update every resource) and exit"
    )
    commands.add_parser(
        "dead-letters", help="list storage events that could not be handled (JSON lines: id, receives, when, body)"
    )
    return parser


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


async def _dead_letters(settings: Settings) -> list[DeadLetter]:
    async with open_services(settings, server_keys(settings), utc_now) as services:
        return await services.backend.queue.dead_letters(_DEAD_LETTERS_SHOWN)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "worker":
        if settings.core.backend == "memory":
            print("lfusys: the memory backend's queue lives in its server process; run lfusys serve", file=sys.stderr)
            return 2
        asyncio.run(_work(settings))
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
