"""LFUSYS under load, as an operator would see it: one ``lfusys serve`` on the local backend.

Each row is measured for an "after" server (the working tree) and, with ``--before REV``, a "before"
server (REV, checked out in a temporary git worktree), in one sitting, taking turns where that makes
sense. Every scenario gets fresh servers with fresh data directories.

* cpu: server CPU per 64 KiB chunk PUT at C = 8, next to bench/ceiling_app.py with the same client;
* worker: a 10,000-chunk upload: how far the storage-event worker is behind at the last chunk's
  acknowledgement (read from the server's SQLite database, read-only), how fast it drains, and how
  long until the upload says ``completed``;
* lists: ``GET /uploads/{id}/chunks`` of a 10,000-chunk session and ``GET /uploads`` with 2,000
  unfinished sessions: bytes and latency;
* janitor: one sweep over those 2,000 sessions, in CPU and wall seconds;
* slow: RSS with 200 (then 400) slow chunk uploads in flight, and a light client's latency meanwhile.

Refusals (429/503 with Retry-After) are waited out, retried and counted. Figures are printed and
written to ``bench/results/load-<timestamp>.json``; they are never asserted. See bench/README.md.

    .venv/bin/python -m bench.load_bench
    .venv/bin/python -m bench.load_bench --before 253e048 --only cpu,lists
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import hashlib
import importlib
import json
import math
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bench import servers
from bench.common import (
    API,
    NO_API_RATE_LIMIT,
    REPO,
    environment,
    expect,
    git,
    key_value,
    log_findings,
    open_connections,
    save,
    stop_on_sigterm,
    workspace,
)
from bench.minihttp import Connection, HttpError, Response, Session, read_response
from bench.servers import HOST, MiB, RunWatch, Server

KiB = 1024
SMALL_CHUNK = 64 * KiB
"""Chunk size of the cpu, worker and lists scenarios: many chunks, few bytes."""
SLOW_CHUNK = 1 * MiB
"""Chunk size of the slow uploads and of the light client."""
SCENARIOS = ("cpu", "worker", "lists", "janitor", "slow")
CEILING_DIRECTORY_ENV = "LFUSYS_BENCH_CEILING_DIR"
SERVER_ENV = {
    "LFUSYS_LOG_LEVEL": "warning",
    "LFUSYS_LOG_FORMAT": "json",
    "LFUSYS_MIN_CHUNK_SIZE": "64KiB",  # so 64 KiB chunks may be proposed
    **NO_API_RATE_LIMIT,
}
SLOW_SERVER_ENV = {"LFUSYS_MAX_CHUNK_PUTS_PER_USER": "1024"}
"""The slow uploads belong to one user: without this the per-user cap (16) would refuse most of them."""
REFUSED = (429, 503)
MAX_REFUSED_WAIT = 120.0
"""Seconds one request may spend waiting out refusals before the scenario gives up."""
RESULT_MARK = "RESULT "
"""Prefix of the line carrying a helper process's JSON result (anything else it prints is ignored)."""

T = TypeVar("T")


# --- small helpers -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def spread(values: Sequence[float], spec: str) -> str:
    """Median, with [min-max] when the values differ."""
    if not values:
        return "-"
    text = format(statistics.median(values), spec)
    if min(values) != max(values):
        text += f" [{format(min(values), spec)}-{format(max(values), spec)}]"
    return text


def rss_mib(pid: int) -> float:
    return (servers.proc_status_kib(pid, "VmRSS") or 0) / 1024


# --- the two code trees ------------------------------------------------------------------------


@dataclass
class Variant:
    """A code tree whose ``src/`` a server runs (``PYTHONPATH``), with the same venv interpreter.

    lfusys finds ``migrations/`` next to ``src/`` in a source checkout, so each tree migrates its
    servers' databases with its own schema.
    """

    name: str
    """``before`` or ``after``: the column of the table."""
    revision: str
    root: Path
    lfusys_file: str = ""
    """Where ``import lfusys`` resolves with this variant's environment (checked before use)."""

    def env(self) -> dict[str, str]:
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("LFUSYS_")}
        return inherited | {"PYTHONPATH": str(self.root / "src")}

    def check(self) -> None:
        """Make sure a process started with :meth:`env` imports this tree's lfusys, not another."""
        code = "import lfusys; print(lfusys.__file__)"
        done = subprocess.run(
            [sys.executable, "-c", code], env=self.env(), cwd=self.root, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: cannot import lfusys from {self.root}: {done.stderr.strip()[-500:]}")
        self.lfusys_file = done.stdout.strip().splitlines()[-1]
        if not Path(self.lfusys_file).resolve().is_relative_to((self.root / "src").resolve()):
            raise RuntimeError(f"{self.name}: lfusys resolves to {self.lfusys_file}, not under {self.root / 'src'}")


def tree_fingerprint(root: Path) -> str:
    """SHA-256 over the names and contents of every file under ``src/`` and ``migrations/``."""
    digest = hashlib.sha256()
    for part in ("src", "migrations"):
        for path in sorted((root / part).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def snapshot_working_tree(target: Path) -> Variant:
    """Copy ``src/`` and ``migrations/`` of the working tree: every scenario then runs the same code,
    even if someone edits the working tree during the sitting."""
    for part in ("src", "migrations"):
        shutil.copytree(REPO / part, target / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    head = git("rev-parse", "--short=12", "HEAD")
    changed = git("status", "--porcelain", "--", "src", "migrations").splitlines()
    revision = f"working tree (HEAD {head} + {len(changed)} changed paths, snapshot {tree_fingerprint(target)})"
    return Variant("after", revision, target)


@contextlib.contextmanager
def before_worktree(revision: str, path: Path) -> Iterator[Variant]:
    """``git worktree add --detach`` of ``revision``, removed again (``--force``) at exit."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    git("worktree", "add", "--detach", str(path), commit)
    try:
        yield Variant("before", f"{revision} ({commit[:12]})", path)
    finally:
        done = subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)], cwd=REPO, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            print(f"warning: git worktree remove {path} failed: {done.stderr.strip()}", file=sys.stderr)


# --- servers -----------------------------------------------------------------------------------


@dataclass
class ServerRecord:
    """What was started, and how it ended: the proof of which code served which column."""

    name: str
    variant: str
    pid: int
    cmdline: str
    pythonpath: str
    migrations: list[int] = field(default_factory=list)
    children: list[int] = field(default_factory=list)
    vm_hwm_mib: float = 0.0
    exit_status: int | None = None
    log_warnings: int = 0
    log_first: list[str] = field(default_factory=list)


@dataclass
class Lfusys:
    """One running (or stopped) ``lfusys serve`` and its data directory."""

    name: str
    variant: Variant
    server: Server
    data_dir: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def database(self) -> Path:
        return self.data_dir / "lfusys.sqlite3"


def _process_env(pid: int, name: str) -> str:
    with contextlib.suppress(OSError):
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            key, _, value = entry.partition(b"=")
            if key.decode(errors="replace") == name:
                return value.decode(errors="replace")
    return ""


class Sitting:
    """Everything one benchmark invocation starts: servers (stopped by PID), refusal counts, records."""

    def __init__(self, args: argparse.Namespace, workdir: Path, variants: list[Variant]) -> None:
        self.args = args
        self.workdir = workdir
        self.variants = variants
        self.running: list[Server] = []
        self.records: dict[str, ServerRecord] = {}
        self.refusals: dict[str, Refusals] = {}

    def refusals_for(self, name: str) -> Refusals:
        return self.refusals.setdefault(name, Refusals())

    def _directory(self, name: str) -> Path:
        directory = self.workdir / name
        directory.mkdir(parents=True, exist_ok=False)
        return directory

    async def start_lfusys(self, variant: Variant, scenario: str, extra_env: dict[str, str] | None = None) -> Lfusys:
        name = f"{variant.name}-{scenario}"
        directory = self._directory(name)
        env = variant.env() | SERVER_ENV | {"LFUSYS_DATA_DIR": str(directory / "data")}
        web_dir = REPO / "web" / "dist"
        if (web_dir / "index.html").is_file():  # the same built app for both, so neither logs its absence
            env["LFUSYS_WEB_DIR"] = str(web_dir)
        env |= (extra_env or {}) | dict(self.args.server_env)
        port = servers.free_port()
        argv = [str(Path(sys.executable).parent / "lfusys"), "serve", "--host", HOST, "--port", str(port)]
        server = servers.start(name, argv, env, port, directory / "server.log", directory)
        self.running.append(server)
        await servers.wait_ready(server, "/health/ready")
        lfusys = Lfusys(name, variant, server, directory / "data", env)
        record = ServerRecord(
            name, variant.name, server.pid, servers.command_line(server.pid), _process_env(server.pid, "PYTHONPATH")
        )
        with contextlib.closing(DatabasePeek(lfusys.database)) as peek:
            record.migrations = peek.migrations()
        record.children = servers.children(server.pid)
        self.records[name] = record
        print(f"  started {name}: pid {server.pid}, port {port}, PYTHONPATH={record.pythonpath}", flush=True)
        return lfusys

    async def start_ceiling(self, scenario: str) -> tuple[Server, Path]:
        name = f"ceiling-{scenario}"
        directory = self._directory(name)
        chunks = directory / "chunks"
        env = {key: value for key, value in os.environ.items() if not key.startswith("LFUSYS_")}
        env[CEILING_DIRECTORY_ENV] = str(chunks)
        port = servers.free_port()
        argv = [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--host", HOST, "--port", str(port)]
        # What `lfusys serve` passes to uvicorn.run (access log off, no proxy headers, 30 s grace).
        argv += ["--no-access-log", "--no-proxy-headers", "--timeout-graceful-shutdown", "30", "--log-level", "warning"]
        server = servers.start(name, argv, env, port, directory / "server.log", REPO)
        self.running.append(server)
        await servers.wait_ready(server, "/chunks/1", status=None)  # no probe; any answer (405) means it is up
        self.records[name] = ServerRecord(name, "ceiling", server.pid, servers.command_line(server.pid), "")
        print(f"  started {name}: pid {server.pid}, port {port}", flush=True)
        return server, chunks

    def stop(self, server: Server) -> None:
        if server not in self.running:
            return
        self.running.remove(server)
        record = self.records.get(server.name)
        if record is not None:
            record.vm_hwm_mib = (servers.proc_status_kib(server.pid, "VmHWM") or 0) / 1024
        status = servers.stop(server)
        if record is not None:
            record.exit_status = status
            record.log_warnings, record.log_first = log_findings(server.log_path)

    def stop_all(self) -> None:
        for server in list(self.running):
            self.stop(server)

    @contextlib.asynccontextmanager
    async def lfusys_servers(
        self, scenario: str, extra_env: dict[str, str] | None = None
    ) -> AsyncIterator[list[Lfusys]]:
        """One fresh server per variant, stopped at exit (their data stays until the sitting ends)."""
        started: list[Lfusys] = []
        try:
            for variant in self.variants:
                started.append(await self.start_lfusys(variant, scenario, extra_env))
            yield started
        finally:
            for lfusys in started:
                self.stop(lfusys.server)


class DatabasePeek:
    """A read-only look into a local backend's SQLite database while its server writes to it."""

    def __init__(self, path: Path) -> None:
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
        self._connection = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None)

    def recorded_chunks(self, upload_id: str) -> int:
        row = self._connection.execute("SELECT recorded_chunks FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        return int(row[0]) if row else 0

    def queued_events(self) -> int:
        return int(self._connection.execute("SELECT COUNT(*) FROM event_queue").fetchone()[0])

    def migrations(self) -> list[int]:
        with contextlib.suppress(sqlite3.Error):
            return [int(row[0]) for row in self._connection.execute("SELECT version FROM schema_migrations")]
        return []

    def close(self) -> None:
        self._connection.close()


async def wait_queue_empty(lfusys: Lfusys, patience: float = 600.0) -> float:
    """Wait until the server's event queue is empty (its worker idle); the seconds it took."""
    start = time.perf_counter()
    with contextlib.closing(DatabasePeek(lfusys.database)) as peek:
        while peek.queued_events():
            if time.perf_counter() - start > patience:
                raise RuntimeError(f"{lfusys.name}: event queue not empty after {patience:.0f} s")
            await asyncio.sleep(0.1)
    return time.perf_counter() - start


# --- the client --------------------------------------------------------------------------------


@dataclass
class Refusals:
    """Requests the server turned away (and the client retried), and connections that broke."""

    too_many_requests: int = 0
    """429 answers."""
    unavailable: int = 0
    """503 answers."""
    waited_seconds: float = 0.0
    connection_errors: int = 0

    def add(self, other: Refusals) -> None:
        self.too_many_requests += other.too_many_requests
        self.unavailable += other.unavailable
        self.waited_seconds += other.waited_seconds
        self.connection_errors += other.connection_errors

    def count(self, status: int, delay: float) -> None:
        if status == 429:
            self.too_many_requests += 1
        else:
            self.unavailable += 1
        self.waited_seconds += delay


def retry_after(response: Response) -> float:
    """Seconds to wait: ``Retry-After`` as seconds or as an HTTP date; 1 s if absent or unreadable."""
    value = (response.header("retry-after") or "").strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    return 1.0


async def send(
    connection: Connection,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body: bytes = b"",
    refusals: Refusals,
) -> Response:
    """One request; refused (429/503) it is sent again after ``Retry-After``; a GET or PUT whose
    connection broke is sent again (up to 3 times) on a new connection."""
    waited = 0.0
    broken = 0
    while True:
        try:
            response = await connection.request(method, path, headers=headers, body=body)
        except HttpError:
            refusals.connection_errors += 1
            broken += 1
            if method not in {"GET", "PUT"} or broken > 3:
                raise
            await asyncio.sleep(0.2)
            continue
        if response.status not in REFUSED:
            return response
        delay = max(min(retry_after(response), 30.0), 0.05)
        if waited + delay > MAX_REFUSED_WAIT:
            raise HttpError(f"{method} {path}: still refused ({response.status}) after waiting {waited:.0f} s")
        refusals.count(response.status, delay)
        await asyncio.sleep(delay)
        waited += delay


class Client:
    """One signed-in user of one server: cookies plus a control connection; refusals are counted."""

    def __init__(self, port: int, refusals: Refusals) -> None:
        self.port = port
        self.session = Session()
        self.control = Connection(HOST, port)
        self.refusals = refusals

    async def call(
        self, method: str, path: str, status: int, payload: Any = None, *, connection: Connection | None = None
    ) -> Response:
        headers = self.session.headers()
        body = b""
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload).encode()
        response = await send(
            connection or self.control, method, API + path, headers=headers, body=body, refusals=self.refusals
        )
        self.session.absorb(response)
        return expect(response, status, f"{method} {path}")

    async def sign_up(self, who: str) -> None:
        """Register a fresh user and log in (``GET /auth/me`` first, for the CSRF cookie)."""
        await self.call("GET", "/auth/me", 401)
        email = f"{who}-{secrets.token_hex(6)}@example.com"
        password = secrets.token_urlsafe(18)
        await self.call("POST", "/auth/register", 201, {"name": who, "email": email, "password": password})
        await self.call("POST", "/auth/login", 200, {"email": email, "password": password})

    async def refresh(self) -> None:
        """A fresh access token (it lives 15 minutes by default)."""
        await self.call("POST", "/auth/refresh", 200)

    async def start_upload(
        self, chunk_size: int, total_chunks: int, *, name: str = "bench.bin", connection: Connection | None = None
    ) -> str:
        """Start an upload of ``total_chunks`` chunks of exactly ``chunk_size``; its id."""
        payload = {
            "file_name": name,
            "file_type": "application/octet-stream",
            "file_size": chunk_size * total_chunks,
            "chunk_size": chunk_size,
        }
        created = (await self.call("POST", "/uploads", 201, payload, connection=connection)).json()
        if (created["chunk_size"], created["total_chunks"]) != (chunk_size, total_chunks):
            raise RuntimeError(f"the server did not take the proposed chunk size: {created}")
        return str(created["upload_id"])

    async def put_chunk(self, connection: Connection, upload_id: str, n: int, body: bytes, digest: str) -> Response:
        headers = self.session.headers() | {"Content-Type": "application/octet-stream", "X-Chunk-Hash": digest}
        path = f"{API}/uploads/{upload_id}/chunks/{n}"
        response = await send(connection, "PUT", path, headers=headers, body=body, refusals=self.refusals)
        return expect(response, 200, f"PUT {path}")

    async def wait_completed(self, upload_id: str, interval: float, patience: float = 900.0) -> str:
        """Poll the upload every ``interval`` seconds until it is completed; its file id."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            view = (await self.call("GET", f"/uploads/{upload_id}", 200)).json()
            if view["status"] == "completed":
                return str(view["file_id"])
            if view["status"] in {"failed", "cancelled", "expired"}:
                raise RuntimeError(f"upload {upload_id} ended {view['status']}: {view}")
            await asyncio.sleep(interval)
        raise RuntimeError(f"upload {upload_id} not completed after {patience:.0f} s")

    async def close(self) -> None:
        await self.control.close()


@dataclass(frozen=True)
class Blocks:
    """A few random blocks of one size and their SHA-256 digests; chunk ``n`` is block ``n mod count``."""

    bodies: tuple[bytes, ...]
    digests: tuple[str, ...]

    @classmethod
    def random(cls, size: int, count: int) -> Blocks:
        bodies = tuple(os.urandom(size) for _ in range(count))
        return cls(bodies, tuple(hashlib.sha256(body).hexdigest() for body in bodies))

    def body(self, n: int) -> bytes:
        return self.bodies[n % len(self.bodies)]

    def digest(self, n: int) -> str:
        return self.digests[n % len(self.digests)]


async def in_parallel(
    items: Iterable[T], connections: Sequence[Connection], work: Callable[[Connection, T], Awaitable[object]]
) -> None:
    """``work`` on every item, one at a time per connection, each connection taking the next item."""
    remaining = iter(items)

    async def slot(connection: Connection) -> None:
        for item in remaining:
            await work(connection, item)

    async with asyncio.TaskGroup() as group:
        for connection in connections:
            group.create_task(slot(connection))


async def put_chunks(
    client: Client, connections: Sequence[Connection], upload_id: str, numbers: Iterable[int], blocks: Blocks
) -> None:
    await in_parallel(
        numbers,
        connections,
        lambda connection, n: client.put_chunk(connection, upload_id, n, blocks.body(n), blocks.digest(n)),
    )


async def delete_file(client: Client, file_id: str, size: int) -> None:
    """Check the finished file's size, then delete it (frees the disk for the next run)."""
    record = (await client.call("GET", f"/files/{file_id}", 200)).json()
    if record["size"] != size:
        raise RuntimeError(f"file {file_id} has {record['size']} bytes, expected {size}")
    await client.call("DELETE", f"/files/{file_id}", 204)


# --- scenario: per-chunk CPU -------------------------------------------------------------------


@dataclass
class CpuRun:
    """One upload of ``chunks`` 64 KiB chunks to one target (attempt 0 is the unrecorded warm-up)."""

    target: str
    attempt: int
    chunks: int
    put_seconds: float
    """First PUT to the last chunk's acknowledgement."""
    server_cpu_seconds: float
    """Server user + system CPU during the PUTs."""
    server_system_seconds: float
    client_cpu_seconds: float
    other_cpu_seconds: float
    """CPU used by the rest of the machine meanwhile (other users' processes disturb the figures)."""
    peak_rss_mib: float
    completed_cpu_seconds: float | None = None
    """lfusys only: server CPU from the first PUT until ``completed`` (events, finalize; polled every 50 ms)."""
    finalize_seconds: float | None = None


@dataclass
class CpuResult:
    chunks: int
    concurrency: int
    runs: list[CpuRun] = field(default_factory=list)

    def other_seconds(self, target: str) -> list[float]:
        return [run.other_cpu_seconds for run in self.runs if run.target == target and run.attempt > 0]

    def ms_per_chunk(self, target: str, completed: bool = False) -> list[float]:
        values = []
        for run in self.runs:
            if run.target != target or run.attempt == 0:
                continue
            seconds = run.completed_cpu_seconds if completed else run.server_cpu_seconds
            if seconds is not None:
                values.append(1000 * seconds / run.chunks)
        return values


def _cpu_line(run: CpuRun) -> str:
    line = f"    {run.target:<8} #{run.attempt}: {run.chunks} chunks in {run.put_seconds:5.2f} s, server CPU"
    line += f" {1000 * run.server_cpu_seconds / run.chunks:.3f} ms/chunk (system {run.server_system_seconds:.2f} s)"
    if run.completed_cpu_seconds is not None:
        line += f", until completed {1000 * run.completed_cpu_seconds / run.chunks:.3f} ms/chunk"
        line += f" (finalize {run.finalize_seconds:.2f} s)"
    line += f", client CPU {run.client_cpu_seconds:.2f} s, rest of machine {run.other_cpu_seconds:.2f} s"
    return line + (" (warm-up, not counted)" if run.attempt == 0 else "")


async def _cpu_run_lfusys(
    lfusys: Lfusys, client: Client, blocks: Blocks, chunks: int, concurrency: int, attempt: int
) -> CpuRun:
    await client.refresh()
    upload_id = await client.start_upload(SMALL_CHUNK, chunks)
    async with open_connections(lfusys.port, concurrency) as connections:
        with RunWatch(lfusys.pid).running() as watch:
            start = time.perf_counter()
            before = sum(servers.cpu_seconds(lfusys.pid))
            await put_chunks(client, connections, upload_id, range(1, chunks + 1), blocks)
            acknowledged = time.perf_counter()
    file_id = await client.wait_completed(upload_id, interval=0.05)
    completed = time.perf_counter()
    completed_cpu = sum(servers.cpu_seconds(lfusys.pid)) - before
    await delete_file(client, file_id, chunks * SMALL_CHUNK)
    return CpuRun(
        target=lfusys.variant.name,
        attempt=attempt,
        chunks=chunks,
        put_seconds=acknowledged - start,
        server_cpu_seconds=watch.server_user_seconds + watch.server_system_seconds,
        server_system_seconds=watch.server_system_seconds,
        client_cpu_seconds=watch.client_cpu_seconds,
        other_cpu_seconds=watch.other_cpu_seconds,
        peak_rss_mib=watch.peak_kib / 1024,
        completed_cpu_seconds=completed_cpu,
        finalize_seconds=completed - acknowledged,
    )


def _empty_directory(directory: Path) -> None:
    for stored in directory.iterdir():
        stored.unlink()


async def _cpu_run_ceiling(
    server: Server, directory: Path, blocks: Blocks, chunks: int, concurrency: int, attempt: int
) -> CpuRun:
    refusals = Refusals()

    async def put(connection: Connection, n: int) -> None:
        headers = {"X-Chunk-Hash": blocks.digest(n), "Content-Type": "application/octet-stream"}
        response = await send(
            connection, "PUT", f"/chunks/{n}", headers=headers, body=blocks.body(n), refusals=refusals
        )
        expect(response, 200, f"PUT /chunks/{n}")

    async with open_connections(server.port, concurrency) as connections:
        with RunWatch(server.pid).running() as watch:
            start = time.perf_counter()
            await in_parallel(range(1, chunks + 1), connections, put)
            stop = time.perf_counter()
    await asyncio.to_thread(_empty_directory, directory)  # off the clock, like the lfusys run's DELETE
    return CpuRun(
        target="ceiling",
        attempt=attempt,
        chunks=chunks,
        put_seconds=stop - start,
        server_cpu_seconds=watch.server_user_seconds + watch.server_system_seconds,
        server_system_seconds=watch.server_system_seconds,
        client_cpu_seconds=watch.client_cpu_seconds,
        other_cpu_seconds=watch.other_cpu_seconds,
        peak_rss_mib=watch.peak_kib / 1024,
    )


async def scenario_cpu(sitting: Sitting) -> CpuResult:
    """Server CPU per 64 KiB chunk PUT at C, lfusys (each variant) and the ceiling, taking turns."""
    args = sitting.args
    result = CpuResult(chunks=args.cpu_chunks, concurrency=args.concurrency)
    blocks = Blocks.random(SMALL_CHUNK, 64)
    async with sitting.lfusys_servers("cpu") as started:
        ceiling, ceiling_dir = await sitting.start_ceiling("cpu")
        try:
            clients = []
            for lfusys in started:
                client = Client(lfusys.port, sitting.refusals_for(lfusys.name))
                await client.sign_up("cpu")
                clients.append(client)

            async def one_round(attempt: int, chunks: int) -> None:
                for lfusys, client in zip(started, clients, strict=True):
                    run = await _cpu_run_lfusys(lfusys, client, blocks, chunks, args.concurrency, attempt)
                    result.runs.append(run)
                    print(_cpu_line(run), flush=True)
                run = await _cpu_run_ceiling(ceiling, ceiling_dir, blocks, chunks, args.concurrency, attempt)
                result.runs.append(run)
                print(_cpu_line(run), flush=True)

            await one_round(0, max(500, args.cpu_chunks // 4))
            for attempt in range(1, args.repeat + 1):
                await one_round(attempt, args.cpu_chunks)
            for client in clients:
                await client.close()
        finally:
            sitting.stop(ceiling)
    return result


# --- scenario: the worker keeping up, and finalize ---------------------------------------------


@dataclass
class WorkerRun:
    """One upload of ``chunks`` 64 KiB chunks at C, followed until it is completed."""

    variant: str
    chunks: int
    put_seconds: float
    recorded_at_ack: int
    """Chunks of the upload whose storage event was recorded when the last chunk was acknowledged."""
    queued_at_ack: int
    """Rows in ``event_queue`` at that moment (the only upload on this server, so all of them are its)."""
    drain_seconds: float | None
    """Last acknowledgement → ``event_queue`` empty (None: it was already empty)."""
    finalize_seconds: float
    """Last acknowledgement → ``GET /uploads/{id}`` says ``completed`` (polled every 10 ms)."""
    server_cpu_seconds: float
    peak_rss_mib: float
    queue_trace: list[tuple[float, int, int]] = field(default_factory=list)
    """(seconds after the last acknowledgement, queued events, recorded chunks), every 20 ms."""

    @property
    def recorded_fraction(self) -> float:
        return self.recorded_at_ack / self.chunks

    @property
    def recorded_per_second(self) -> float:
        """Events the worker recorded per second while the chunks were arriving."""
        return self.recorded_at_ack / self.put_seconds

    @property
    def drain_rate(self) -> float | None:
        if not self.drain_seconds:
            return None
        return self.queued_at_ack / self.drain_seconds


async def _follow_queue(
    peek: DatabasePeek, upload_id: str, since: float, completed: asyncio.Event, trace: list[tuple[float, int, int]]
) -> float | None:
    """Sample the queue every 20 ms until it is empty and the upload completed; when it got empty."""
    drained: float | None = None
    while True:
        elapsed = time.perf_counter() - since
        queued = peek.queued_events()
        trace.append((round(elapsed, 3), queued, peek.recorded_chunks(upload_id)))
        if queued == 0 and drained is None:
            drained = elapsed
        if (drained is not None and completed.is_set()) or elapsed > 900:
            return drained
        await asyncio.sleep(0.02)


async def _worker_run(lfusys: Lfusys, client: Client, blocks: Blocks, chunks: int, concurrency: int) -> WorkerRun:
    upload_id = await client.start_upload(SMALL_CHUNK, chunks)
    trace: list[tuple[float, int, int]] = []
    completed = asyncio.Event()
    with contextlib.closing(DatabasePeek(lfusys.database)) as peek:
        async with open_connections(lfusys.port, concurrency) as connections:
            with RunWatch(lfusys.pid).running() as watch:
                start = time.perf_counter()
                await put_chunks(client, connections, upload_id, range(1, chunks + 1), blocks)
                acknowledged = time.perf_counter()
                recorded, queued = peek.recorded_chunks(upload_id), peek.queued_events()
                follower = asyncio.create_task(_follow_queue(peek, upload_id, acknowledged, completed, trace))
                try:
                    file_id = await client.wait_completed(upload_id, interval=0.01)
                    finished = time.perf_counter()
                finally:
                    completed.set()
                    drained = await follower
    await delete_file(client, file_id, chunks * SMALL_CHUNK)
    return WorkerRun(
        variant=lfusys.variant.name,
        chunks=chunks,
        put_seconds=acknowledged - start,
        recorded_at_ack=recorded,
        queued_at_ack=queued,
        drain_seconds=drained if queued else None,
        finalize_seconds=finished - acknowledged,
        server_cpu_seconds=watch.server_user_seconds + watch.server_system_seconds,
        peak_rss_mib=watch.peak_kib / 1024,
        queue_trace=trace,
    )


async def scenario_worker(sitting: Sitting) -> list[WorkerRun]:
    """A ``--chunks``-chunk upload per variant, one after the other, each on its own fresh server."""
    args = sitting.args
    blocks = Blocks.random(SMALL_CHUNK, 64)
    runs = []
    async with sitting.lfusys_servers("worker") as started:
        for lfusys in started:
            client = Client(lfusys.port, sitting.refusals_for(lfusys.name))
            await client.sign_up("worker")
            run = await _worker_run(lfusys, client, blocks, args.chunks, args.concurrency)
            await client.close()
            runs.append(run)
            rate = f"{run.drain_rate:.0f} events/s" if run.drain_rate else "-"
            print(
                f"    {run.variant}: {run.chunks} chunks in {run.put_seconds:.2f} s; at the last ack"
                f" {run.recorded_at_ack} recorded ({100 * run.recorded_fraction:.1f}%, {run.recorded_per_second:.0f}/s"
                f" while uploading), {run.queued_at_ack} queued;"
                f" drained in {run.drain_seconds or 0:.2f} s ({rate}); completed {run.finalize_seconds:.3f} s"
                f" after the last ack; server CPU {run.server_cpu_seconds:.2f} s, peak RSS {run.peak_rss_mib:.0f} MiB",
                flush=True,
            )
    return runs


# --- scenario: lists (and the loaded servers the janitor sweeps) -------------------------------


@dataclass
class ListFigures:
    """One list endpoint of one variant: size of the answer and latency of fetching all of it."""

    variant: str
    endpoint: str
    items: int
    """Entries over all pages (checked against what was created)."""
    first_page_bytes: int
    pages: int
    total_bytes: int
    walk_ms: list[float] = field(default_factory=list)
    """Per call: the sum of the page requests' round trips (client-side JSON parsing excluded)."""
    first_page_ms: list[float] = field(default_factory=list)


@dataclass
class Loaded:
    """A server holding a big session (all chunks but one stored) and many small unfinished ones."""

    lfusys: Lfusys
    many: Client
    """The user with ``--sessions`` unfinished sessions."""
    sessions: int
    big: Client | None = None
    big_upload: str | None = None
    big_stored: int = 0
    setup_seconds: float = 0.0


async def _load_server(sitting: Sitting, lfusys: Lfusys, with_big_session: bool) -> Loaded:
    args = sitting.args
    start = time.perf_counter()
    blocks = Blocks.random(SMALL_CHUNK, 16)
    refusals = sitting.refusals_for(lfusys.name)
    many = Client(lfusys.port, refusals)
    await many.sign_up("many")
    loaded = Loaded(lfusys, many, args.sessions)
    async with open_connections(lfusys.port, args.concurrency) as connections:

        async def unfinished(connection: Connection, i: int) -> None:
            """A session of two chunks with the first one stored: in progress, as a real user leaves it."""
            upload_id = await many.start_upload(SMALL_CHUNK, 2, name=f"unfinished-{i}.bin", connection=connection)
            await many.put_chunk(connection, upload_id, 1, blocks.body(i), blocks.digest(i))

        await in_parallel(range(args.sessions), connections, unfinished)
        if with_big_session:
            loaded.big = Client(lfusys.port, refusals)
            await loaded.big.sign_up("big")
            loaded.big_upload = await loaded.big.start_upload(SMALL_CHUNK, args.chunks)
            loaded.big_stored = args.chunks - 1  # all but the last: stored, never finalized
            await put_chunks(loaded.big, connections, loaded.big_upload, range(1, args.chunks), blocks)
    await wait_queue_empty(lfusys)  # measure lists with the worker idle
    loaded.setup_seconds = time.perf_counter() - start
    print(
        f"    {lfusys.name}: {args.sessions} unfinished sessions"
        + (f" and a {args.chunks}-chunk session ({loaded.big_stored} stored)" if with_big_session else "")
        + f" in {loaded.setup_seconds:.1f} s",
        flush=True,
    )
    return loaded


async def _walk(client: Client, path: str, key: str) -> tuple[int, int, int, int, float, float]:
    """GET ``path``, following ``next_cursor``: (items, first page bytes, pages, total bytes, seconds, first page s)."""
    items = pages = total_bytes = first_bytes = 0
    seconds = first_seconds = 0.0
    cursor: str | None = None
    while True:
        page_path = path if cursor is None else f"{path}?cursor={urllib.parse.quote(cursor, safe='')}"
        start = time.perf_counter()
        response = await client.call("GET", page_path, 200)
        elapsed = time.perf_counter() - start
        if pages == 0:
            first_bytes, first_seconds = len(response.body), elapsed
        pages += 1
        seconds += elapsed
        total_bytes += len(response.body)
        page = response.json()
        items += len(page[key])
        next_cursor = page.get("next_cursor")
        if not next_cursor:
            return items, first_bytes, pages, total_bytes, seconds, first_seconds
        if next_cursor == cursor or pages > 100_000:
            raise RuntimeError(f"GET {path}: the cursor does not advance ({next_cursor!r})")
        cursor = str(next_cursor)


async def _measure_lists(
    loaded: list[Loaded], endpoint: str, calls: int, call: Callable[[Loaded], Awaitable[tuple[Any, ...]]]
) -> list[ListFigures]:
    """``calls`` walks per server, in blocks of 10 taking turns between the servers."""
    figures: dict[str, ListFigures] = {}
    for block in range(0, calls, 10):
        for server in loaded:
            for _ in range(min(10, calls - block)):
                items, first_bytes, pages, total_bytes, seconds, first_seconds = await call(server)
                name = server.lfusys.variant.name
                mine = figures.setdefault(name, ListFigures(name, endpoint, items, first_bytes, pages, total_bytes))
                mine.walk_ms.append(1000 * seconds)
                mine.first_page_ms.append(1000 * first_seconds)
    return list(figures.values())


async def scenario_lists(sitting: Sitting, loaded: list[Loaded]) -> list[ListFigures]:
    """Chunk list of the big session, then the upload list of the user with many sessions."""
    args = sitting.args
    figures = []
    for server in loaded:
        await server.many.refresh()
        if server.big is not None:
            await server.big.refresh()

    async def chunk_list(server: Loaded) -> tuple[Any, ...]:
        assert server.big is not None
        return await _walk(server.big, f"/uploads/{server.big_upload}/chunks", "chunks")

    async def upload_list(server: Loaded) -> tuple[Any, ...]:
        return await _walk(server.many, "/uploads", "uploads")

    figures += await _measure_lists(loaded, "chunks", args.chunk_list_calls, chunk_list)
    figures += await _measure_lists(loaded, "uploads", args.upload_list_calls, upload_list)
    for figure in figures:
        expected = args.chunks - 1 if figure.endpoint == "chunks" else args.sessions
        warning = "" if figure.items == expected else f"  (EXPECTED {expected} entries)"
        latency = f"median {statistics.median(figure.walk_ms):.1f} ms, p99 {percentile(figure.walk_ms, 99):.1f} ms"
        print(
            f"    {figure.variant} GET {figure.endpoint}: {figure.items} entries, {figure.total_bytes:,} bytes in"
            f" {figure.pages} page(s) (first {figure.first_page_bytes:,}); {latency}{warning}",
            flush=True,
        )
    return figures


# --- scenario: janitor sweep -------------------------------------------------------------------


@dataclass
class JanitorRun:
    """``services.janitor.sweep()`` timed in a process that opened the stopped server's data directory."""

    variant: str
    sessions: int
    cpu_seconds: list[float]
    """``time.process_time()`` per sweep (every thread of the process, SQLite's included)."""
    wall_seconds: list[float]
    reports: list[str]
    opened_with: str
    lfusys_file: str


def run_janitor_probe(lfusys: Lfusys, sessions: int, sweeps: int) -> JanitorRun:
    """Run ``--internal janitor-probe`` with the variant's environment, so it imports that tree's lfusys."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.load_bench", "--internal", "janitor-probe"],
        input=json.dumps({"sweeps": sweeps}),
        env=lfusys.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    result = _marked_result(done.stdout)
    if done.returncode != 0 or result is None:
        raise RuntimeError(f"janitor probe of {lfusys.name} failed ({done.returncode}): {done.stderr[-2000:]}")
    return JanitorRun(
        variant=lfusys.variant.name,
        sessions=sessions,
        cpu_seconds=result["cpu_seconds"],
        wall_seconds=result["wall_seconds"],
        reports=result["reports"],
        opened_with=result["opened_with"],
        lfusys_file=result["lfusys_file"],
    )


async def _janitor_probe(sweeps: int) -> dict[str, Any]:
    """In a helper process: open the backend of ``LFUSYS_DATA_DIR`` and time ``janitor.sweep()``."""
    import lfusys
    from lfusys.settings import load_settings

    settings = load_settings()
    try:
        from lfusys.clock import utc_now
        from lfusys.services import build_services
        from lfusys.storage.backend import open_backend, server_keys

        current_api = True
    except ImportError:  # older trees: lfusys.app opened the embedded backend and built the services
        current_api = False
    async with contextlib.AsyncExitStack() as stack:
        janitor: Any
        if current_api:
            keys = server_keys(settings)
            backend = await stack.enter_async_context(open_backend(settings, keys, utc_now))
            janitor = build_services(settings, keys, backend, utc_now).janitor
            opened_with = "lfusys.storage.backend.open_backend + lfusys.services.build_services"
        else:
            app: Any = importlib.import_module("lfusys.app")
            old_keys: Any = importlib.import_module("lfusys.keys").load_or_create_keys(settings)
            janitor = (await stack.enter_async_context(app.open_services(settings, old_keys))).janitor
            opened_with = "lfusys.app.open_services (before lfusys.storage.backend existed)"
        cpu, wall, reports = [], [], []
        for _ in range(sweeps):
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            report = await janitor.sweep()
            wall.append(time.perf_counter() - wall_start)
            cpu.append(time.process_time() - cpu_start)
            reports.append(repr(report))
    return {
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "reports": reports,
        "opened_with": opened_with,
        "lfusys_file": lfusys.__file__,
    }


def scenario_janitor(sitting: Sitting, loaded: list[Loaded]) -> list[JanitorRun]:
    """Sweep each (stopped) loaded server's data, taking turns between the variants."""
    runs = []
    for server in loaded:
        if server.lfusys.server in sitting.running:
            raise RuntimeError(f"{server.lfusys.name} must be stopped before its data is swept")
        run = run_janitor_probe(server.lfusys, server.sessions, sitting.args.sweeps)
        runs.append(run)
        print(
            f"    {run.variant}: sweep over {run.sessions} unfinished sessions: CPU s "
            + ", ".join(f"{value:.3f}" for value in run.cpu_seconds)
            + "; wall s "
            + ", ".join(f"{value:.3f}" for value in run.wall_seconds)
            + f"; {run.reports[-1][:200]}",
            flush=True,
        )
    return runs


async def scenario_lists_and_janitor(
    sitting: Sitting, measure_lists: bool, measure_janitor: bool
) -> tuple[list[ListFigures], list[JanitorRun]]:
    lists: list[ListFigures] = []
    loaded: list[Loaded] = []
    async with sitting.lfusys_servers("lists") as started:
        for lfusys in started:
            loaded.append(await _load_server(sitting, lfusys, with_big_session=measure_lists))
        if measure_lists:
            lists = await scenario_lists(sitting, loaded)
        for server in loaded:
            await server.many.close()
            if server.big is not None:
                await server.big.close()
    # The servers are stopped now: their data directories stay for the janitor.
    return lists, scenario_janitor(sitting, loaded) if measure_janitor else []


# --- scenario: slow uploads, memory and fairness -----------------------------------------------


@dataclass
class SlowLoadReport:
    """What the load process saw (it runs apart, so its event loop does not delay the light client)."""

    uploads: int
    seconds: float
    stored_chunks: int
    put_seconds_median: float
    put_seconds_p95: float
    too_many_requests: int
    unavailable: int
    waited_seconds: float
    connection_errors: int
    other_statuses: dict[str, int]


@dataclass
class SlowLevel:
    """One variant under ``uploads`` concurrent slow chunk uploads."""

    variant: str
    uploads: int
    rss_before_mib: float
    rss_peak_mib: float
    rss_after_mib: float
    """``--settle`` seconds after the load ended."""
    server_cpu_seconds: float
    load: SlowLoadReport
    idle_put_ms: list[float]
    idle_me_ms: list[float]
    loaded_put_ms: list[float]
    loaded_me_ms: list[float]
    rss_trace: list[tuple[float, float]] = field(default_factory=list)
    """(seconds after the load ended, RSS MiB), every second while settling."""


LIGHT_CHUNKS = 5000
"""Chunks in the light client's session (1 MiB each): more than it can send in one level."""


@dataclass
class _SlowServer:
    lfusys: Lfusys
    slow: Client
    light: Client
    light_block: bytes
    light_digest: str


async def _light_client(
    server: _SlowServer, upload_id: str, *, pairs: int | None = None, stop: asyncio.Event | None = None
) -> tuple[list[float], list[float]]:
    """1 MiB chunk PUT, then ``GET /auth/me``, one after another; their latencies in ms."""
    put_ms: list[float] = []
    me_ms: list[float] = []
    client = server.light
    n = 1
    while (pairs is None or n <= pairs) and (stop is None or not stop.is_set()) and n <= LIGHT_CHUNKS:
        start = time.perf_counter()
        await client.put_chunk(client.control, upload_id, n, server.light_block, server.light_digest)
        put_ms.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        await client.call("GET", "/auth/me", 200)
        me_ms.append(1000 * (time.perf_counter() - start))
        n += 1
    return put_ms, me_ms


async def _run_slow_load(
    sitting: Sitting, server: _SlowServer, upload_ids: list[str], max_chunks: int
) -> tuple[SlowLoadReport, list[float], list[float]]:
    """Start the load process, run the light client until the load ends; (load report, PUT ms, me ms)."""
    args = sitting.args
    spec = {
        "port": server.lfusys.port,
        "headers": server.slow.session.headers(),
        "uploads": upload_ids,
        "chunk_size": SLOW_CHUNK,
        "piece": 64 * KiB,
        "interval": 0.05,
        "seconds": args.slow_seconds,
        "max_chunks": max_chunks,
    }
    light_upload = await server.light.start_upload(SLOW_CHUNK, LIGHT_CHUNKS, name="light.bin")
    with (sitting.workdir / server.lfusys.name / f"load-{len(upload_ids)}.log").open("wb") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.load_bench",
            "--internal",
            "slow-load",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
            cwd=REPO,
        )
        try:
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write(json.dumps(spec).encode())
            await process.stdin.drain()
            process.stdin.close()
            lines: list[str] = []
            while not lines or lines[-1] != "started":
                line = await process.stdout.readline()
                if not line:
                    raise RuntimeError(f"the load process ended early; see {errors.name}")
                lines.append(line.decode().strip())
            stop = asyncio.Event()
            light = asyncio.create_task(_light_client(server, light_upload, stop=stop))
            try:
                while lines[-1] != "finished":
                    line = await process.stdout.readline()
                    if not line:
                        raise RuntimeError(f"the load process ended early; see {errors.name}")
                    lines.append(line.decode().strip())
            finally:
                stop.set()
                put_ms, me_ms = await light
            result = _marked_result((await process.stdout.read()).decode())
            if await process.wait() != 0 or result is None:
                raise RuntimeError(f"the load process failed ({process.returncode}); see {errors.name}")
        finally:
            if process.returncode is None:  # only ever the process started here, by its own handle
                process.kill()
                await process.wait()
    await server.light.call("DELETE", f"/uploads/{light_upload}", 204)
    report = SlowLoadReport(**result)
    refusals = sitting.refusals_for(server.lfusys.name)
    refusals.add(
        Refusals(report.too_many_requests, report.unavailable, report.waited_seconds, report.connection_errors)
    )
    return report, put_ms, me_ms


async def _slow_level(sitting: Sitting, server: _SlowServer, uploads: int) -> tuple[SlowLevel, list[str], float]:
    """Idle baseline, then the load with the light client; (figures, upload ids, when the load ended)."""
    args = sitting.args
    lfusys = server.lfusys
    for client in (server.slow, server.light):
        await client.refresh()
    max_chunks = math.ceil(args.slow_seconds / 0.75) + 8  # a slow PUT takes at least 15 x 50 ms
    upload_ids: list[str] = []
    async with open_connections(lfusys.port, args.concurrency) as connections:

        async def start(connection: Connection, i: int) -> None:
            upload_ids.append(
                await server.slow.start_upload(SLOW_CHUNK, max_chunks, name=f"slow-{i}.bin", connection=connection)
            )

        await in_parallel(range(uploads), connections, start)
    idle_upload = await server.light.start_upload(SLOW_CHUNK, LIGHT_CHUNKS, name="light-idle.bin")
    idle_put, idle_me = await _light_client(server, idle_upload, pairs=args.light_idle)
    await server.light.call("DELETE", f"/uploads/{idle_upload}", 204)
    await asyncio.sleep(1.0)
    rss_before = rss_mib(lfusys.pid)
    with RunWatch(lfusys.pid).running() as watch:
        report, put_ms, me_ms = await _run_slow_load(sitting, server, upload_ids, max_chunks)
    ended = time.perf_counter()
    level = SlowLevel(
        variant=lfusys.variant.name,
        uploads=uploads,
        rss_before_mib=rss_before,
        rss_peak_mib=watch.peak_kib / 1024,
        rss_after_mib=math.nan,
        server_cpu_seconds=watch.server_user_seconds + watch.server_system_seconds,
        load=report,
        idle_put_ms=idle_put,
        idle_me_ms=idle_me,
        loaded_put_ms=put_ms,
        loaded_me_ms=me_ms,
    )
    print(
        f"    {lfusys.variant.name} x{uploads}: {report.stored_chunks} slow chunks stored in {report.seconds:.1f} s"
        f" (PUT median {report.put_seconds_median:.2f} s, p95 {report.put_seconds_p95:.2f} s);"
        f" RSS {rss_before:.0f} -> peak {level.rss_peak_mib:.0f} MiB; light PUT p50"
        f" {percentile(idle_put, 50):.1f} -> {percentile(put_ms, 50):.1f} ms, /auth/me p50"
        f" {percentile(idle_me, 50):.1f} -> {percentile(me_ms, 50):.1f} ms; refused"
        f" {report.too_many_requests} x 429, {report.unavailable} x 503; connection errors"
        f" {report.connection_errors}; other statuses {report.other_statuses or 'none'}",
        flush=True,
    )
    return level, upload_ids, ended


async def _settle(watched: list[tuple[Lfusys, SlowLevel, float]], settle: float) -> None:
    """Sample each server's RSS every second until ``settle`` seconds after its load ended, side by side."""
    pending = list(watched)
    while pending:
        for item in list(pending):
            lfusys, level, ended = item
            since = time.perf_counter() - ended
            rss = rss_mib(lfusys.pid)
            level.rss_trace.append((round(since, 1), rss))
            if since >= settle:
                level.rss_after_mib = rss
                pending.remove(item)
                print(
                    f"    {level.variant} x{level.uploads}: RSS {since:.0f} s after the load: {rss:.0f} MiB", flush=True
                )
        if pending:
            next_due = min(settle - (time.perf_counter() - ended) for _, _, ended in pending)
            await asyncio.sleep(min(1.0, max(next_due, 0.0)))


async def _cancel_all(client: Client, upload_ids: list[str], concurrency: int) -> None:
    await client.refresh()
    async with open_connections(client.port, concurrency) as connections:

        async def cancel(connection: Connection, upload_id: str) -> None:
            await client.call("DELETE", f"/uploads/{upload_id}", 204, connection=connection)

        await in_parallel(upload_ids, connections, cancel)


async def scenario_slow(sitting: Sitting) -> list[SlowLevel]:
    """For each ``--slow`` level: the load on each variant in turn, then both settle side by side."""
    args = sitting.args
    levels: list[SlowLevel] = []
    async with sitting.lfusys_servers("slow", SLOW_SERVER_ENV) as started:
        prepared = []
        for lfusys in started:
            refusals = sitting.refusals_for(lfusys.name)
            slow, light = Client(lfusys.port, refusals), Client(lfusys.port, refusals)
            await slow.sign_up("slow")
            await light.sign_up("light")
            block = os.urandom(SLOW_CHUNK)
            prepared.append(_SlowServer(lfusys, slow, light, block, hashlib.sha256(block).hexdigest()))
        for uploads in args.slow:
            this_level = []
            for server in prepared:
                level, upload_ids, ended = await _slow_level(sitting, server, uploads)
                this_level.append((server, level, upload_ids, ended))
            await _settle([(server.lfusys, level, ended) for server, level, _, ended in this_level], args.settle)
            levels += [level for _, level, _, _ in this_level]
            for server, _, upload_ids, _ in this_level:  # off the record: cancel them to free the disk
                await _cancel_all(server.slow, upload_ids, args.concurrency)
        for server in prepared:
            await server.slow.close()
            await server.light.close()
    return levels


# --- helper processes --------------------------------------------------------------------------


def _marked_result(output: str) -> dict[str, Any] | None:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    return None


class _SlowSlot:
    """One connection sending 1 MiB chunks of one session, 64 KiB every 50 ms, one after another."""

    def __init__(self, spec: dict[str, Any], upload_id: str, block: bytes, digest: str) -> None:
        self.port = int(spec["port"])
        self.piece = int(spec["piece"])
        self.interval = float(spec["interval"])
        self.block = memoryview(block)
        self.path = f"{API}/uploads/{upload_id}/chunks/"
        extra = "".join(f"{name}: {value}\r\n" for name, value in spec["headers"].items())
        self.head_rest = (
            f"Host: {HOST}:{self.port}\r\nContent-Length: {len(block)}\r\nContent-Type: application/octet-stream\r\n"
            f"X-Chunk-Hash: {digest}\r\n{extra}\r\n"
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            writer, self.reader, self.writer = self.writer, None, None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def put(self, n: int) -> Response | None:
        """One paced PUT of chunk ``n``; None when the connection broke (it is then closed)."""
        await self.connect()
        assert self.reader is not None
        assert self.writer is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.writer.write(f"PUT {self.path}{n} HTTP/1.1\r\n{self.head_rest}".encode("latin-1"))
        answer = asyncio.ensure_future(read_response(self.reader))
        whole_body = True
        try:
            for index, offset in enumerate(range(0, len(self.block), self.piece)):
                if answer.done():  # answered before the whole body was sent (a refusal, an error)
                    whole_body = False
                    break
                if index:
                    await asyncio.sleep(max(0.0, started + index * self.interval - loop.time()))
                self.writer.write(self.block[offset : offset + self.piece])
                await self.writer.drain()
            response = await asyncio.wait_for(answer, timeout=300)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError, HttpError):
            answer.cancel()
            await asyncio.gather(answer, return_exceptions=True)
            await self.close()
            return None
        if not whole_body or (response.header("connection") or "").lower() == "close":
            await self.close()
        return response


async def _slow_load(spec: dict[str, Any]) -> dict[str, Any]:
    """In a helper process: every upload of ``spec`` gets a slot sending slow chunks until the deadline."""
    block = os.urandom(int(spec["chunk_size"]))
    digest = hashlib.sha256(block).hexdigest()
    slots = [_SlowSlot(spec, upload_id, block, digest) for upload_id in spec["uploads"]]
    await asyncio.gather(*(slot.connect() for slot in slots))
    durations: list[float] = []
    counts = {"stored": 0, "429": 0, "503": 0, "broken": 0}
    waited = [0.0]
    others: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    print("started", flush=True)
    start = loop.time()
    deadline = start + float(spec["seconds"])

    async def run(slot: _SlowSlot) -> None:
        n = 1
        while loop.time() < deadline and n <= int(spec["max_chunks"]):
            began = loop.time()
            response = await slot.put(n)
            if response is None:
                counts["broken"] += 1
                await asyncio.sleep(0.2)
            elif response.status == 200:
                durations.append(loop.time() - began)
                counts["stored"] += 1
                n += 1
            elif response.status in REFUSED:
                counts[str(response.status)] += 1
                delay = max(min(retry_after(response), 30.0), 0.05)
                waited[0] += delay
                await asyncio.sleep(delay)
            else:
                others[str(response.status)] = others.get(str(response.status), 0) + 1
                n += 1
                await asyncio.sleep(0.1)
        await slot.close()

    await asyncio.gather(*(run(slot) for slot in slots))
    elapsed = loop.time() - start
    print("finished", flush=True)
    return {
        "uploads": len(slots),
        "seconds": elapsed,
        "stored_chunks": counts["stored"],
        "put_seconds_median": statistics.median(durations) if durations else math.nan,
        "put_seconds_p95": percentile(durations, 95),
        "too_many_requests": counts["429"],
        "unavailable": counts["503"],
        "waited_seconds": waited[0],
        "connection_errors": counts["broken"],
        "other_statuses": others,
    }


def internal_main(mode: str) -> int:
    """The helper processes: read a JSON spec on stdin, print the result on a ``RESULT`` line."""
    spec = json.loads(sys.stdin.read() or "{}")
    if mode == "janitor-probe":
        result = asyncio.run(_janitor_probe(int(spec.get("sweeps", 5))))
    else:
        result = asyncio.run(_slow_load(spec))
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


# --- the sitting and its report ----------------------------------------------------------------


@dataclass
class Results:
    cpu: CpuResult | None = None
    worker: list[WorkerRun] = field(default_factory=list)
    lists: list[ListFigures] = field(default_factory=list)
    janitor: list[JanitorRun] = field(default_factory=list)
    slow: list[SlowLevel] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


async def run_sitting(sitting: Sitting, results: Results) -> None:
    only = sitting.args.only

    async def step(name: str, work: Callable[[], Awaitable[None]]) -> None:
        print(f"\n== {name} ==", flush=True)
        start = time.perf_counter()
        try:
            await work()
        except Exception as exc:  # one scenario failing must not lose the others' figures
            results.errors[name] = f"{type(exc).__name__}: {exc}"
            print(f"  {name} FAILED: {results.errors[name]}", flush=True)
        finally:
            sitting.stop_all()
            results.seconds[name] = time.perf_counter() - start
            print(f"  ({name}: {results.seconds[name]:.0f} s)", flush=True)

    async def cpu() -> None:
        results.cpu = await scenario_cpu(sitting)

    async def worker() -> None:
        results.worker = await scenario_worker(sitting)

    async def lists_and_janitor() -> None:
        results.lists, results.janitor = await scenario_lists_and_janitor(sitting, "lists" in only, "janitor" in only)

    async def slow() -> None:
        results.slow = await scenario_slow(sitting)

    if "cpu" in only:
        await step("cpu", cpu)
    if "worker" in only:
        await step("worker", worker)
    if "lists" in only or "janitor" in only:
        await step("+".join(name for name in ("lists", "janitor") if name in only), lists_and_janitor)
    if "slow" in only:
        await step("slow", slow)


Cell = Callable[[str], str]


def _by_variant(items: Iterable[T], variant: str) -> list[T]:
    return [item for item in items if getattr(item, "variant", None) == variant]


def _ms_pair(values: Sequence[float], low: float, high: float) -> str:
    return f"{percentile(values, low):.1f} / {percentile(values, high):.1f}" if values else "-"


def table_rows(results: Results, args: argparse.Namespace, sitting: Sitting) -> list[tuple[str, Cell]]:
    """The table's rows: a label and how to fill a variant's cell."""
    rows: list[tuple[str, Cell]] = []
    cpu = results.cpu
    if cpu is not None:
        ceiling = cpu.ms_per_chunk("ceiling")
        label = f"per-chunk CPU ms, {cpu.chunks} x 64 KiB, C={cpu.concurrency}"

        def ratio(variant: str, completed: bool = False) -> str:
            mine = cpu.ms_per_chunk(variant, completed)
            if not mine or not ceiling:
                return "-"
            return f"{statistics.median(mine) / statistics.median(ceiling):.2f}"

        rows += [
            (f"{label}: lfusys, PUTs", lambda v: spread(cpu.ms_per_chunk(v), ".3f")),
            (f"{label}: lfusys, until completed", lambda v: spread(cpu.ms_per_chunk(v, completed=True), ".3f")),
            (f"{label}: ceiling (same server both columns)", lambda v: spread(ceiling, ".3f")),
            ("per-chunk CPU: lfusys/ceiling, PUTs (until completed)", lambda v: f"{ratio(v)} ({ratio(v, True)})"),
            ("per-chunk CPU: rest of machine CPU s per lfusys run", lambda v: spread(cpu.other_seconds(v), ".2f")),
        ]
    if results.worker:
        worker = results.worker

        def one(v: str) -> WorkerRun | None:
            return next(iter(_by_variant(worker, v)), None)

        def recorded(v: str) -> str:
            run = one(v)
            return f"{100 * run.recorded_fraction:.1f}% ({run.recorded_at_ack})" if run else "-"

        def drain(v: str) -> str:
            run = one(v)
            if run is None:
                return "-"
            if run.drain_rate is None:
                return "queue already empty"
            return f"{run.drain_rate:.0f}/s ({run.queued_at_ack} in {run.drain_seconds:.2f} s)"

        def keeping_up(v: str) -> str:
            run = one(v)
            return f"{run.recorded_per_second:.0f}/s (chunks PUT {run.chunks / run.put_seconds:.0f}/s)" if run else "-"

        def queued(v: str) -> str:
            run = one(v)
            return str(run.queued_at_ack) if run else "-"

        def finalize(v: str) -> str:
            run = one(v)
            return f"{run.finalize_seconds:.3f}" if run else "-"

        rows += [
            (f"worker: {args.chunks} chunks, recorded at last ack", recorded),
            ("worker: events recorded/s while uploading", keeping_up),
            ("worker: events still queued at last ack", queued),
            ("worker: drain rate events/s (ack -> queue empty)", drain),
            ("finalize s (last ack -> completed)", finalize),
        ]
    if results.lists:
        lists = results.lists

        def figure(v: str, endpoint: str) -> ListFigures | None:
            return next((f for f in lists if f.variant == v and f.endpoint == endpoint), None)

        def size(v: str, endpoint: str) -> str:
            found = figure(v, endpoint)
            if found is None:
                return "-"
            if found.pages == 1:
                text = f"{found.total_bytes:,} B, 1 page"
            else:
                text = f"{found.first_page_bytes:,} B first; {found.pages} pages, {found.total_bytes:,} B"
            expected = args.chunks - 1 if endpoint == "chunks" else args.sessions
            if found.items != expected:
                text += f"; ONLY {found.items} of {expected} entries"
            return text

        def latency(v: str, endpoint: str, high: float) -> str:
            found = figure(v, endpoint)
            return _ms_pair(found.walk_ms, 50, high) if found else "-"

        rows += [
            (f"chunk list ({args.chunks - 1} stored): bytes", lambda v: size(v, "chunks")),
            (f"chunk list: p50 / p99 ms ({args.chunk_list_calls} calls)", lambda v: latency(v, "chunks", 99)),
            (f"upload list ({args.sessions} unfinished): bytes", lambda v: size(v, "uploads")),
            (f"upload list: p50 / p99 ms ({args.upload_list_calls} calls)", lambda v: latency(v, "uploads", 99)),
        ]
    if results.janitor:
        janitor = results.janitor

        def sweep(v: str) -> str:
            runs = _by_variant(janitor, v)
            if not runs:
                return "-"
            return f"{spread(runs[0].cpu_seconds, '.3f')} / {spread(runs[0].wall_seconds, '.3f')}"

        rows.append((f"janitor sweep, {args.sessions} unfinished: CPU s / wall s", sweep))
    for uploads in args.slow if results.slow else []:
        levels = [level for level in results.slow if level.uploads == uploads]

        def level_of(v: str, levels: list[SlowLevel] = levels) -> SlowLevel | None:
            return next(iter(_by_variant(levels, v)), None)

        def memory(v: str, level_of: Callable[[str], SlowLevel | None] = level_of) -> str:
            level = level_of(v)
            if level is None:
                return "-"
            return f"{level.rss_before_mib:.0f} / {level.rss_peak_mib:.0f} / {level.rss_after_mib:.0f}"

        def latencies(v: str, what: str, level_of: Callable[[str], SlowLevel | None] = level_of) -> str:
            level = level_of(v)
            if level is None:
                return "-"
            idle = level.idle_put_ms if what == "put" else level.idle_me_ms
            loaded = level.loaded_put_ms if what == "put" else level.loaded_me_ms
            return f"{_ms_pair(idle, 50, 95)} -> {_ms_pair(loaded, 50, 95)}"

        def stored(v: str, level_of: Callable[[str], SlowLevel | None] = level_of) -> str:
            level = level_of(v)
            if level is None:
                return "-"
            load = level.load
            rate = load.stored_chunks / load.seconds
            return f"{load.stored_chunks} ({rate:.0f} MiB/s), PUT p50 {load.put_seconds_median:.2f} s"

        rows += [
            (f"slow x{uploads}: RSS MiB before / peak / {args.settle:.0f} s after", memory),
            (f"slow x{uploads}: 1 MiB chunks stored in {args.slow_seconds:.0f} s", stored),
            (f"fairness x{uploads}: light PUT 1 MiB p50 / p95 ms, idle -> loaded", partial(latencies, what="put")),
            (f"fairness x{uploads}: GET /auth/me p50 / p95 ms, idle -> loaded", partial(latencies, what="me")),
        ]

    def refusals(v: str) -> str:
        total = Refusals()
        for name, counted in sitting.refusals.items():
            if name.startswith(f"{v}-"):
                total.add(counted)
        return f"{total.too_many_requests} / {total.unavailable} ({total.connection_errors})"

    def warnings(v: str) -> str:
        return str(sum(record.log_warnings for record in sitting.records.values() if record.variant == v))

    rows += [
        ("refused 429 / 503 (connection errors)", refusals),
        ("server log lines at warning or above", warnings),
    ]
    return rows


def table(results: Results, args: argparse.Namespace, sitting: Sitting) -> str:
    """``row | before | after`` as fixed-width text, then what each column ran."""
    variants = [variant.name for variant in sitting.variants]
    lines = [["row", *variants]]
    lines += [[label, *(cell(variant) for variant in variants)] for label, cell in table_rows(results, args, sitting)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(variants) + 1)]

    def render(line: list[str]) -> str:
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        return " | ".join(cells)

    out = [render(lines[0]), "-" * len(render(lines[0]))]
    out += [render(line) for line in lines[1:]]
    out += ["", *(f"{variant.name}: {variant.revision}" for variant in sitting.variants)]
    return "\n".join(out)


# --- command line ------------------------------------------------------------------------------


def _scenarios(text: str) -> tuple[str, ...]:
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"scenarios are {', '.join(SCENARIOS)}; got {text!r}")
    return chosen


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load_bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--before", metavar="REV", help="also measure this git revision (a temporary worktree)")
    parser.add_argument(
        "--only", type=_scenarios, default=SCENARIOS, help=f"comma-separated scenarios (default: {','.join(SCENARIOS)})"
    )
    parser.add_argument("--chunks", type=int, default=10_000, help="chunks of the worker and chunk-list sessions")
    parser.add_argument("--cpu-chunks", type=int, default=4000, help="chunks per run of the cpu scenario")
    parser.add_argument("--repeat", type=int, default=2, help="recorded runs per target in the cpu scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight for bulk PUTs (default 8)")
    parser.add_argument("--sessions", type=int, default=2000, help="unfinished sessions for the upload list/janitor")
    parser.add_argument("--chunk-list-calls", type=int, default=50)
    parser.add_argument("--upload-list-calls", type=int, default=100)
    parser.add_argument("--sweeps", type=int, default=5, help="janitor sweeps timed per variant")
    parser.add_argument("--slow", type=int, nargs="+", default=[200, 400], help="concurrent slow uploads, in turn")
    parser.add_argument("--slow-seconds", type=float, default=15.0, help="how long each slow load lasts")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds after a slow load to read RSS again")
    parser.add_argument("--light-idle", type=int, default=40, help="light-client PUT+me pairs on the idle server")
    parser.add_argument(
        "--server-env",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every lfusys serve (repeatable)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary directory (data, logs)")
    parser.add_argument("--internal", choices=("janitor-probe", "slow-load"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.internal:
        return args
    if min(args.chunks, args.cpu_chunks, args.repeat, args.concurrency, args.sessions, *args.slow) < 1:
        parser.error("counts must be at least 1")
    if not 2 <= args.chunks <= 10_000:
        parser.error("--chunks must be 2 to 10000 (an upload has at most 10,000 chunks; the chunk list leaves one out)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.internal:
        return internal_main(args.internal)
    stop_on_sigterm()
    started = time.perf_counter()
    payload: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment()}
    payload["arguments"] = {key: value for key, value in vars(args).items() if key != "internal"}
    results = Results()
    with workspace(args.keep_data, "lfusys-load-") as workdir, contextlib.ExitStack() as trees:
        variants = []
        if args.before:
            variants.append(trees.enter_context(before_worktree(args.before, workdir / "before-tree")))
        variants.append(snapshot_working_tree(workdir / "after-tree"))
        for variant in variants:
            variant.check()
            print(f"{variant.name}: {variant.revision}; lfusys imported from {variant.lfusys_file}", flush=True)
        sitting = Sitting(args, workdir, variants)
        try:
            asyncio.run(run_sitting(sitting, results))
        finally:
            sitting.stop_all()
        changed = tree_fingerprint(REPO) != tree_fingerprint(variants[-1].root)
        text = table(results, args, sitting)
    elapsed = time.perf_counter() - started
    for record in sitting.records.values():
        if record.log_warnings:
            print(f"\n{record.name} server log: {record.log_warnings} line(s) at warning or above, first ones:")
            print("\n".join(f"  {line}" for line in record.log_first))
    print("\nservers (the proof of which code served which column):")
    for record in sitting.records.values():
        print(
            f"  {record.name}: pid {record.pid}, PYTHONPATH={record.pythonpath or '-'}, migrations {record.migrations},"
            f" children {record.children or 'none'}, exit {record.exit_status}, VmHWM {record.vm_hwm_mib:.0f} MiB"
        )
    if changed:
        print("\nnote: the working tree's src/ or migrations/ changed during the sitting; 'after' ran the snapshot")
    for name, error in results.errors.items():
        print(f"\nscenario {name} FAILED: {error}")
    print(f"\n{text}")
    print(f"\nscenario seconds: {results.seconds}; total {elapsed:.0f} s")
    payload |= {
        "variants": [asdict(variant) for variant in sitting.variants],
        "servers": {name: asdict(record) for name, record in sitting.records.items()},
        "refusals": {name: asdict(counted) for name, counted in sitting.refusals.items()},
        "results": asdict(results),
        "table": text.splitlines(),
        "working_tree_changed_during_sitting": changed,
        "total_seconds": elapsed,
    }
    print(f"results written to {save(payload, 'load-')}")
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
