"""Upload throughput of LFUSYS against a ceiling, in one sitting on one machine.

Starts ``lfusys serve`` and ``bench.ceiling_app`` (the least a server must do to store a checked
chunk) as child processes, makes a random test file, and for each concurrency C uploads it in turns:
real, ceiling, real, ceiling … (``--repeat`` times each), so both see the same machine state.

* real: clock from ``POST /api/v1/uploads`` through every chunk ``PUT`` (C in flight) to the upload's
  status reading ``completed``; the file's size and checksum are then checked (off the clock).
* ceiling: clock from the first chunk ``PUT`` to the last 200.

Every chunk's SHA-256 is computed before any clock starts. Figures are printed and written to
``bench/results/<timestamp>.json``; they are never asserted. See bench/README.md.

    .venv/bin/python -m bench.upload_bench --size-mib 1024 --concurrency 1 4 8
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import servers
from bench.common import (
    API,
    NO_API_RATE_LIMIT,
    REPO,
    environment,
    expect,
    key_value,
    open_connections,
    reported_logs,
    save,
    stop_on_sigterm,
    workspace,
)
from bench.minihttp import Connection, FileSlice, Response, Session
from bench.servers import HOST, MiB, RunWatch, Server

DEFAULT_CHUNK_SIZE = 8 * MiB
POLL_INTERVAL = 0.01
FINALIZE_TIMEOUT = 900.0
TARGETS = ("real", "ceiling")
CEILING_DIRECTORY_ENV = "LFUSYS_BENCH_CEILING_DIR"
"""Read by bench/ceiling_app.py (not imported here: importing it builds its app)."""


# --- the test file -----------------------------------------------------------------------------


@dataclass
class TestFile:
    """The random file uploaded by every run, and the digests it must produce (computed up front)."""

    path: Path
    fd: int
    size: int
    chunk_size: int
    digests: list[str]

    @property
    def total_chunks(self) -> int:
        return len(self.digests)

    def body(self, n: int) -> FileSlice:
        """Chunk ``n`` (1-based) as a request body read from the file, never held whole."""
        offset = (n - 1) * self.chunk_size
        return FileSlice(self.fd, offset, min(self.chunk_size, self.size - offset))

    def hash_chunk(self, n: int) -> str:
        """SHA-256 of chunk ``n``, read from the file in 8 MiB pieces."""
        offset = (n - 1) * self.chunk_size
        end = min(offset + self.chunk_size, self.size)
        digest = hashlib.sha256()
        for start in range(offset, end, 8 * MiB):
            digest.update(os.pread(self.fd, min(8 * MiB, end - start), start))
        return digest.hexdigest()

    def expected_checksum(self) -> str:
        """What LFUSYS reports as a file's checksum: SHA-256 of the raw chunk digests in order."""
        outer = hashlib.sha256()
        for digest in self.digests:
            outer.update(bytes.fromhex(digest))
        return outer.hexdigest()


def make_test_file(path: Path, size: int, chunk_size: int) -> TestFile:
    """Write ``size`` random bytes (in 8 MiB pieces) and hash every chunk of ``chunk_size``.

    The file is fsynced, so the kernel does not write it back during a timed run (it stays in the
    page cache, so reading it costs no disk I/O either)."""
    with path.open("wb") as out:
        for start in range(0, size, 8 * MiB):
            out.write(os.urandom(min(8 * MiB, size - start)))
        out.flush()
        os.fsync(out.fileno())
    data = TestFile(path, os.open(path, os.O_RDONLY), size, chunk_size, [])
    data.digests = [data.hash_chunk(n) for n in range(1, -(-size // chunk_size) + 1)]
    return data


# --- results -----------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed upload of the whole test file to one target."""

    target: str
    concurrency: int
    attempt: int
    seconds: float
    mib_per_s: float
    peak_rss_mib: float
    chunks_seconds: float
    """Clock start to the last chunk's 200."""
    server_cpu_seconds: float
    """User plus system CPU time of the server process during the run."""
    server_system_seconds: float
    client_cpu_seconds: float
    other_cpu_seconds: float
    """CPU time used meanwhile by the rest of the machine: kernel writeback, journal and interrupt
    work done for the run, plus any other user's processes (which disturb the figures)."""
    finalize_seconds: float | None = None
    """Real only: last chunk's 200 to ``completed``."""


def summarize(runs: list[Run], size: int) -> list[dict[str, Any]]:
    """Median, min and max per concurrency and target, and the ratio of the medians."""
    rows = []
    for concurrency in sorted({run.concurrency for run in runs}):
        row: dict[str, Any] = {"concurrency": concurrency}
        for target in TARGETS:
            mine = [run for run in runs if run.concurrency == concurrency and run.target == target]
            if not mine:
                continue
            rates = [run.mib_per_s for run in mine]
            row[target] = {
                "mib_per_s": _spread(rates),
                "chunks_mib_per_s": _spread([size / MiB / run.chunks_seconds for run in mine]),
                "peak_rss_mib_max": max(run.peak_rss_mib for run in mine),
                "server_cpu_seconds": _spread([run.server_cpu_seconds for run in mine]),
                "client_cpu_seconds": _spread([run.client_cpu_seconds for run in mine]),
            }
            finalize = [run.finalize_seconds for run in mine if run.finalize_seconds is not None]
            if finalize:
                row[target]["finalize_seconds"] = _spread(finalize)
        if "real" in row and "ceiling" in row:
            row["ratio_real_to_ceiling"] = row["real"]["mib_per_s"]["median"] / row["ceiling"]["mib_per_s"]["median"]
            row["ratio_chunks_to_ceiling"] = (
                row["real"]["chunks_mib_per_s"]["median"] / row["ceiling"]["mib_per_s"]["median"]
            )
        rows.append(row)
    return rows


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# --- uploading ---------------------------------------------------------------------------------


async def put_chunks(
    connections: Sequence[Connection],
    data: TestFile,
    request_for: Callable[[int, str], tuple[str, dict[str, str]]],
    hash_on_the_clock: bool = False,
) -> None:
    """PUT every chunk, one request in flight per connection; each takes the next chunk number.

    With ``hash_on_the_clock`` each chunk is read and hashed (in a thread) just before it is sent,
    as the web app does, instead of using the digest computed before the clock started.
    """
    numbers = iter(range(1, data.total_chunks + 1))

    async def slot(connection: Connection) -> None:
        for n in numbers:
            digest = await asyncio.to_thread(data.hash_chunk, n) if hash_on_the_clock else data.digests[n - 1]
            path, headers = request_for(n, digest)
            response = await connection.request("PUT", path, headers=headers, body=data.body(n))
            expect(response, 200, f"PUT {path}")

    async with asyncio.TaskGroup() as group:
        for connection in connections:
            group.create_task(slot(connection))


class RealServer:
    """A signed-in client of ``lfusys serve``: a cookie session plus one control connection."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.session = Session()
        self.control = Connection(HOST, server.port)

    async def call(self, method: str, path: str, status: int, payload: Any = None) -> Response:
        headers = self.session.headers()
        body = b""
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload).encode()
        response = await self.control.request(method, API + path, headers=headers, body=body)
        self.session.absorb(response)
        return expect(response, status, f"{method} {path}")

    async def sign_up(self) -> None:
        """Register a fresh user and log in (``GET /auth/me`` first, for the CSRF cookie)."""
        await self.call("GET", "/auth/me", 401)
        email, password = f"bench-{secrets.token_hex(6)}@example.com", secrets.token_urlsafe(18)
        await self.call("POST", "/auth/register", 201, {"name": "Bench", "email": email, "password": password})
        await self.call("POST", "/auth/login", 200, {"email": email, "password": password})

    async def chosen_chunk_size(self, size: int) -> int:
        """Start and cancel an upload of ``size`` bytes to learn the chunk size the server picks."""
        created = (await self.call("POST", "/uploads", 201, _new_upload(size))).json()
        await self.call("DELETE", f"/uploads/{created['upload_id']}", 204)
        return int(created["chunk_size"])

    async def run(self, data: TestFile, concurrency: int, attempt: int, hash_on_the_clock: bool = False) -> Run:
        await self.call("POST", "/auth/refresh", 200)  # off the clock: a fresh access token for the run
        headers = self.session.headers() | {"Content-Type": "application/octet-stream"}
        async with open_connections(self.server.port, concurrency) as connections:
            with RunWatch(self.server.pid).running() as watch:
                start = time.perf_counter()
                created = (await self.call("POST", "/uploads", 201, _new_upload(data.size))).json()
                if (created["chunk_size"], created["total_chunks"]) != (data.chunk_size, data.total_chunks):
                    raise RuntimeError(f"the server changed its chunk plan: {created}")
                upload = f"{API}/uploads/{created['upload_id']}"
                await put_chunks(
                    connections,
                    data,
                    lambda n, digest: (f"{upload}/chunks/{n}", headers | {"X-Chunk-Hash": digest}),
                    hash_on_the_clock,
                )
                acknowledged = time.perf_counter()
                file_id = await self._completed(created["upload_id"])
                stop = time.perf_counter()
        await self.verify_and_delete(file_id, data)
        return Run(
            target="real",
            concurrency=concurrency,
            attempt=attempt,
            seconds=stop - start,
            mib_per_s=data.size / MiB / (stop - start),
            **_watched(watch),
            chunks_seconds=acknowledged - start,
            finalize_seconds=stop - acknowledged,
        )

    async def _completed(self, upload_id: str) -> str:
        """Poll the upload every ~10 ms until it is completed; its file id."""
        deadline = time.monotonic() + FINALIZE_TIMEOUT
        while time.monotonic() < deadline:
            view = (await self.call("GET", f"/uploads/{upload_id}", 200)).json()
            if view["status"] == "completed":
                return str(view["file_id"])
            if view["status"] in {"failed", "cancelled", "expired"}:
                raise RuntimeError(f"upload {upload_id} ended {view['status']}: {view}")
            await asyncio.sleep(POLL_INTERVAL)
        raise RuntimeError(f"upload {upload_id} not completed after {FINALIZE_TIMEOUT:.0f} s")

    async def verify_and_delete(self, file_id: str, data: TestFile) -> None:
        """The stored file has the right size and checksum; then delete it to free the disk."""
        record = (await self.call("GET", f"/files/{file_id}", 200)).json()
        if record["size"] != data.size or record["checksum"] != data.expected_checksum():
            raise RuntimeError(f"file {file_id} is wrong: {record}")
        await self.call("DELETE", f"/files/{file_id}", 204)


class CeilingServer:
    def __init__(self, server: Server, directory: Path) -> None:
        self.server = server
        self.directory = directory

    async def run(self, data: TestFile, concurrency: int, attempt: int) -> Run:
        async with open_connections(self.server.port, concurrency) as connections:
            with RunWatch(self.server.pid).running() as watch:
                start = time.perf_counter()
                await put_chunks(
                    connections,
                    data,
                    lambda n, digest: (
                        f"/chunks/{n}",
                        {"X-Chunk-Hash": digest, "Content-Type": "application/octet-stream"},
                    ),
                )
                stop = time.perf_counter()
        for stored in self.directory.iterdir():  # off the clock, right away, like the real run's DELETE
            stored.unlink()
        return Run(
            target="ceiling",
            concurrency=concurrency,
            attempt=attempt,
            seconds=stop - start,
            mib_per_s=data.size / MiB / (stop - start),
            **_watched(watch),
            chunks_seconds=stop - start,
        )


def _watched(watch: RunWatch) -> dict[str, float]:
    return {
        "peak_rss_mib": watch.peak_kib / 1024,
        "server_cpu_seconds": watch.server_user_seconds + watch.server_system_seconds,
        "server_system_seconds": watch.server_system_seconds,
        "client_cpu_seconds": watch.client_cpu_seconds,
        "other_cpu_seconds": watch.other_cpu_seconds,
    }


def _new_upload(size: int) -> dict[str, Any]:
    return {"file_name": "bench.bin", "file_type": "application/octet-stream", "file_size": size}


# --- the servers -------------------------------------------------------------------------------


def start_servers(args: argparse.Namespace, workdir: Path) -> list[Server]:
    """Start the targets asked for; both under uvicorn with its defaults (uvloop, httptools)."""
    bin_dir = Path(sys.executable).parent
    base_env = {key: value for key, value in os.environ.items() if not key.startswith("LFUSYS_")}
    started: list[Server] = []
    try:
        if "real" in args.targets:
            env = base_env | {
                "LFUSYS_DATA_DIR": str(workdir / "server-data"),
                "LFUSYS_LOG_LEVEL": "warning",
                "LFUSYS_LOG_FORMAT": "json",
                **NO_API_RATE_LIMIT,
            }
            env |= dict(args.server_env)
            port = servers.free_port()
            argv = [str(bin_dir / "lfusys"), "serve", "--host", HOST, "--port", str(port)]
            started.append(servers.start("real", argv, env, port, workdir / "real-server.log", REPO))
        if "ceiling" in args.targets:
            env = base_env | {CEILING_DIRECTORY_ENV: str(workdir / "ceiling-data")}
            port = servers.free_port()
            argv = [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--host", HOST, "--port", str(port)]
            # What `lfusys serve` passes to uvicorn.run (access log off, no proxy headers, 30 s grace).
            argv += ["--no-access-log", "--no-proxy-headers", "--timeout-graceful-shutdown", "30"]
            argv += ["--log-level", "warning"]
            started.append(servers.start("ceiling", argv, env, port, workdir / "ceiling-server.log", REPO))
    except BaseException:
        for server in started:
            servers.stop(server)
        raise
    return started


def describe_process(server: Server) -> dict[str, Any]:
    """Its command line and child processes: with one worker, uvicorn should have spawned none."""
    return {
        "pid": server.pid,
        "cmdline": servers.command_line(server.pid),
        "children": [{"pid": child, "cmdline": servers.command_line(child)} for child in servers.children(server.pid)],
    }


# --- the sitting -------------------------------------------------------------------------------


async def sitting(args: argparse.Namespace, workdir: Path, started: list[Server]) -> dict[str, Any]:
    """Everything between starting the servers and stopping them."""
    by_name = {server.name: server for server in started}
    for server in started:
        if server.name == "real":
            await servers.wait_ready(server, "/health/ready")
        else:  # it has no probe; any answer (405 here) means it is up
            await servers.wait_ready(server, "/chunks/1", status=None)
    real = RealServer(by_name["real"]) if "real" in by_name else None
    ceiling = CeilingServer(by_name["ceiling"], workdir / "ceiling-data") if "ceiling" in by_name else None
    size = args.size_mib * MiB
    chunk_size = DEFAULT_CHUNK_SIZE
    if real is not None:
        await real.sign_up()
        chunk_size = await real.chosen_chunk_size(size)
    startup_hwm = {server.name: (servers.proc_status_kib(server.pid, "VmHWM") or 0) / 1024 for server in started}
    print(f"making a {args.size_mib} MiB test file and hashing its chunks ({chunk_size / MiB:g} MiB) …", flush=True)
    data = make_test_file(workdir / "test-file.bin", size, chunk_size)
    try:
        runs = await _all_runs(args, data, real, ceiling)
    finally:
        os.close(data.fd)
        if real is not None:
            await real.control.close()
    return {
        "size_bytes": size,
        "chunk_size": chunk_size,
        "total_chunks": data.total_chunks,
        "runs": [asdict(run) for run in runs],
        "summary": summarize(runs, size),
        "processes": {server.name: describe_process(server) for server in started},
        "startup_vm_hwm_mib": startup_hwm,
        "vm_hwm_mib": {server.name: (servers.proc_status_kib(server.pid, "VmHWM") or 0) / 1024 for server in started},
    }


async def _all_runs(
    args: argparse.Namespace, data: TestFile, real: RealServer | None, ceiling: CeilingServer | None
) -> list[Run]:
    targets = [target for target in (real, ceiling) if target is not None]
    for target in targets:  # not recorded: warms up both the servers and the machine's memory
        print(_run_line(await target.run(data, args.concurrency[0], 0)) + " (warm-up, not counted)", flush=True)
    runs: list[Run] = []
    for concurrency in args.concurrency:
        for attempt in range(1, args.repeat + 1):
            for target in targets:
                run = await target.run(data, concurrency, attempt)
                runs.append(run)
                print(_run_line(run), flush=True)
    return runs


def _run_line(run: Run) -> str:
    line = f"  {run.target:<7} C={run.concurrency:<2} #{run.attempt}: {run.mib_per_s:7.1f} MiB/s"
    line += f" in {run.seconds:6.2f} s"
    if run.finalize_seconds is not None:
        line += f" (chunks {run.chunks_seconds:.2f} s, finalize {run.finalize_seconds:.3f} s)"
    line += f", peak RSS {run.peak_rss_mib:.0f} MiB, CPU s: server {run.server_cpu_seconds:.2f}"
    line += f" (system {run.server_system_seconds:.2f}), client {run.client_cpu_seconds:.2f}"
    return line + f", rest of machine {run.other_cpu_seconds:.2f}"


# --- report ------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    """The summary as a fixed-width table: median, with [min-max] where there were several runs."""
    columns: list[tuple[str, int, Callable[[dict[str, Any]], str]]] = [
        ("C", 3, lambda row: str(row["concurrency"])),
        ("real MiB/s end to end", 24, lambda row: _cell(row, "real", "mib_per_s", ".1f")),
        ("real MiB/s chunks", 24, lambda row: _cell(row, "real", "chunks_mib_per_s", ".1f")),
        ("ceiling MiB/s", 24, lambda row: _cell(row, "ceiling", "mib_per_s", ".1f")),
        (
            "real/ceil",
            9,
            lambda row: format(row["ratio_real_to_ceiling"], ".2f") if "real" in row and "ceiling" in row else "-",
        ),
        ("finalize s", 20, lambda row: _cell(row, "real", "finalize_seconds", ".3f")),
        ("peak RSS MiB real/ceil", 22, lambda row: f"{_peak(row, 'real')} / {_peak(row, 'ceiling')}"),
        ("server CPU s real/ceil", 22, lambda row: f"{_cpu(row, 'real')} / {_cpu(row, 'ceiling')}"),
        (
            "CPU s/GiB real/ceil",
            20,
            lambda row: f"{_cpu_per_gib(row, 'real', gib)} / {_cpu_per_gib(row, 'ceiling', gib)}",
        ),
    ]
    gib = results["size_bytes"] / 1024**3
    header = " | ".join(f"{title:>{width}}" for title, width, _ in columns)
    lines = [
        f"{results['size_bytes'] / MiB:g} MiB in {results['total_chunks']} chunks of "
        f"{results['chunk_size'] / MiB:g} MiB, {results['repeat']} run(s) per target and C; "
        "MiB/s = size / wall time",
        "",
        header,
        "-" * len(header),
    ]
    for row in results["summary"]:
        lines.append(" | ".join(f"{cell(row):>{width}}" for _, width, cell in columns))
    started = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in results["startup_vm_hwm_mib"].items())
    hwm = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in results["vm_hwm_mib"].items())
    lines += ["", f"VmHWM after start-up and sign-in (before any upload): {started}", f"VmHWM at the end: {hwm}"]
    disturbed = [run for run in results["runs"] if _disturbed(run)]
    if disturbed:
        names = ", ".join(f"{run['target']} C={run['concurrency']} #{run['attempt']}" for run in disturbed)
        lines.append(f"DISTURBED (the rest of the machine used over 10% of a core): {names}")
    for name, process in results["processes"].items():
        spawned = process["children"] or "none"
        lines.append(f"{name}: pid {process['pid']} `{process['cmdline']}`, child processes: {spawned}")
    return "\n".join(lines)


def _disturbed(run: dict[str, Any]) -> bool:
    """Whether something else ran meanwhile: the kernel's own share stays far below this.

    The floor of 0.1 s keeps the 10 ms granularity of CPU accounting from flagging very short runs."""
    return bool(run["other_cpu_seconds"] > max(0.1 * run["seconds"], 0.1))


def _cell(row: dict[str, Any], target: str, figure: str, spec: str) -> str:
    spread = row.get(target, {}).get(figure)
    if spread is None:
        return "-"
    text = format(spread["median"], spec)
    if spread["min"] != spread["max"]:
        text += f" [{format(spread['min'], spec)}-{format(spread['max'], spec)}]"
    return text


def _peak(row: dict[str, Any], target: str) -> str:
    return format(row[target]["peak_rss_mib_max"], ".0f") if target in row else "-"


def _cpu(row: dict[str, Any], target: str) -> str:
    return format(row[target]["server_cpu_seconds"]["median"], ".2f") if target in row else "-"


def _cpu_per_gib(row: dict[str, Any], target: str, gib: float) -> str:
    return format(row[target]["server_cpu_seconds"]["median"] / gib, ".2f") if target in row else "-"


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.upload_bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="test file size in MiB (default: 1024)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 4, 8], help="chunks in flight, each value in turn"
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs per target and concurrency (default: 2)")
    parser.add_argument("--only", choices=TARGETS, help="measure only this target")
    parser.add_argument(
        "--server-env",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for lfusys serve (repeatable)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary directory (data and logs)")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.repeat < 1 or min(args.concurrency) < 1:
        parser.error("--size-mib, --repeat and --concurrency must be at least 1")
    args.targets = (args.only,) if args.only else TARGETS
    return args


Sitting = Callable[[argparse.Namespace, Path, list[Server]], Coroutine[Any, Any, dict[str, Any]]]


def run_sitting(args: argparse.Namespace, sitting: Sitting) -> dict[str, Any]:
    """Start the servers ``args.targets`` names in a fresh workspace, run ``sitting`` against them, stop
    them (whatever happened) and add how each exited and what its log reported."""
    results: dict[str, Any] = {}
    with workspace(args.keep_data) as workdir:
        started = start_servers(args, workdir)
        try:
            results |= asyncio.run(sitting(args, workdir, started))
        finally:
            results["exit_status"] = {server.name: servers.stop(server) for server in started}
            results["server_logs"] = reported_logs({server.name: server.log_path for server in started})
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    results: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "repeat": args.repeat}
    results["arguments"] = {key: value for key, value in vars(args).items() if key != "targets"}
    results["environment"] = environment()
    results |= run_sitting(args, sitting)
    print()
    print(table(results))
    print(f"\nresults written to {save(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
