"""What every benchmark needs: a scratch directory, the machine's description, the results file,
stopping cleanly on SIGTERM, and a few HTTP client helpers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NoReturn

from bench.minihttp import Connection, HttpError, Response
from bench.servers import HOST

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
API = "/api/v1"
NO_API_RATE_LIMIT = {"LFUSYS_RATE_LIMIT_API": "0"}
"""For servers that benchmarks push at loopback speed: one user's chunks arrive far faster than the
per-user request limit (sized for uploads over the internet) allows, and its 429s would be measured
instead of the server. Unknown to revisions before the limit, which ignore it."""


def git(*argv: str, check: bool = True) -> str:
    done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"git {' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def environment() -> dict[str, Any]:
    """The commit, uncommitted server changes and the machine, saved beside every result."""
    return {
        "git_commit": git("rev-parse", "HEAD", check=False),
        "git_changed_paths": git("status", "--porcelain", "--", "src", "migrations", check=False).splitlines(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }


def save(payload: dict[str, Any], prefix: str = "", suffix: str = "") -> Path:
    """Write ``bench/results/<prefix><timestamp><suffix>.json``."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}{suffix}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


@contextlib.contextmanager
def workspace(keep: bool, prefix: str = "lfusys-bench-") -> Iterator[Path]:
    """A fresh temporary directory for test files, the servers' data and their logs."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so the ``finally`` blocks stop the servers."""
    signal.signal(signal.SIGTERM, _interrupt)


def log_findings(path: Path, limit: int = 10) -> tuple[int, list[str]]:
    """How many lines of a server log are at warning level or above, and the first ``limit`` of them
    (lines that are not JSON count, e.g. tracebacks)."""
    found = []
    with contextlib.suppress(FileNotFoundError), path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if not line.strip():
                continue
            try:
                level = str(json.loads(line).get("level", "")).lower()
            except (ValueError, AttributeError):
                level = "?"
            if level not in {"debug", "info"}:
                found.append(line.rstrip()[:400])
    return len(found), found[:limit]


def reported_logs(named_logs: dict[str, Path], what: str = "server log") -> dict[str, dict[str, Any]]:
    """Each log's findings (:func:`log_findings`, first 20), printed for every log that has any."""
    findings: dict[str, dict[str, Any]] = {}
    for name, path in named_logs.items():
        count, first = log_findings(path, limit=20)
        findings[name] = {"count": count, "first": first}
        if count:
            print(f"\n{name} {what}: {count} line(s) at warning or above (or not JSON), first ones:")
            print("\n".join(f"  {line}" for line in first))
    return findings


def key_value(text: str) -> tuple[str, str]:
    """An argparse type for ``KEY=VALUE``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def expect(response: Response, status: int, what: str) -> Response:
    if response.status != status:
        raise HttpError(f"{what}: expected {status}, got {response.status}: {response.body[:300]!r}")
    return response


@contextlib.asynccontextmanager
async def open_connections(port: int, count: int) -> AsyncIterator[list[Connection]]:
    """``count`` keep-alive connections, connected before the caller starts its clock."""
    connections = [Connection(HOST, port) for _ in range(count)]
    try:
        await asyncio.gather(*(connection.open() for connection in connections))
        yield connections
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))
