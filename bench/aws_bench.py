"""Upload throughput of LFUSYS on its aws backend, against the local AWS emulator, in one sitting.

Starts MiniStack (the emulator ``scripts/bootstrap --test`` installs in ``.venv-emu/``) on a free
loopback port, then ``lfusys serve`` twice: on the aws backend (S3, SQS and DynamoDB in the emulator)
and on the local backend. For each ``--size-mib`` it uploads a random test file in turns, ``--repeat``
times each, with ``--concurrency`` requests in flight:

* aws, local: upload_bench's real target (clock from ``POST /api/v1/uploads`` through every chunk
  ``PUT`` to the upload reading ``completed``; size and checksum checked and the file deleted off the
  clock);
* direct: the same chunks PUT straight into the emulator's S3 with the same HTTP client, to presigned
  URLs that sign each chunk's ``x-amz-checksum-sha256`` (clock from the first PUT to the last 200);
* direct-boto: the same with aioboto3's ``put_object`` (``ChecksumSHA256``) and the S3 client settings
  LFUSYS itself uses.

The emulator's CPU is measured beside the server's. Figures are printed and written to
``bench/results/<timestamp>-aws.json``; they are never asserted. See bench/README.md.

    .venv/bin/python -m bench.aws_bench --size-mib 256 1024 --concurrency 4 --repeat 2
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import statistics
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import aioboto3

from bench import servers
from bench.common import (
    API,
    NO_API_RATE_LIMIT,
    REPO,
    environment,
    key_value,
    open_connections,
    reported_logs,
    save,
    stop_on_sigterm,
    workspace,
)
from bench.servers import HOST, MiB, RunWatch, Server
from bench.upload_bench import (
    DEFAULT_CHUNK_SIZE,
    RealServer,
    TestFile,
    _new_upload,
    describe_process,
    make_test_file,
    put_chunks,
)
from lfusys.settings import AwsSettings
from lfusys.storage.aws.clients import client_config
from lfusys.storage.objects import chunk_key, upload_prefix

if TYPE_CHECKING:  # the client types are stubs, installed for development only
    from types_aiobotocore_s3 import S3Client

MINISTACK = REPO / ".venv-emu" / "bin" / "ministack"
TARGETS = ("aws", "local", "direct", "direct-boto")
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
"""MiniStack takes any credentials, but checks signatures made with them."""
CLEANUP_PATIENCE = 120.0
PRESIGNED_LIFETIME = 6 * 3600


# --- results -----------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed upload of one test file to one target."""

    target: str
    size_mib: int
    concurrency: int
    attempt: int
    seconds: float
    mib_per_s: float
    chunks_seconds: float
    """Clock start to the last chunk's 200."""
    emulator_cpu_seconds: float
    """User plus system CPU time of the emulator process during the run."""
    emulator_peak_rss_mib: float
    emulator_rss_after_mib: float
    """The emulator's VmRSS once the run's objects were deleted (off the clock)."""
    client_cpu_seconds: float
    other_cpu_seconds: float
    """CPU time used meanwhile by the rest of the machine (kernel work, other users' processes)."""
    server_cpu_seconds: float | None = None
    """aws and local: user plus system CPU time of ``lfusys serve`` during the run."""
    server_peak_rss_mib: float | None = None
    finalize_seconds: float | None = None
    """aws and local: the last chunk's 200 to ``completed``."""
    cleanup_seconds: float | None = None
    """aws: ``completed`` to the upload's chunk objects being gone from S3 (off the clock)."""
    server_cpu_finalize_seconds: float | None = None
    """aws and local: CPU time of the server from the last chunk's 200 to ``completed`` (part of the above)."""
    emulator_cpu_finalize_seconds: float | None = None
    """aws and local: the emulator's, over the same span."""


class Watched(TypedDict):
    """What a :class:`Watch` saw, as :class:`Run` fields."""

    emulator_cpu_seconds: float
    emulator_peak_rss_mib: float
    client_cpu_seconds: float
    other_cpu_seconds: float
    server_cpu_seconds: NotRequired[float]
    server_peak_rss_mib: NotRequired[float]


class Watch:
    """RunWatch on the server (if there is one besides the emulator) and on the emulator, over one window."""

    def __init__(self, server_pid: int | None, emulator_pid: int) -> None:
        self.server = RunWatch(server_pid) if server_pid is not None else None
        self.emulator = RunWatch(emulator_pid)

    @contextlib.contextmanager
    def running(self) -> Iterator[Watch]:
        with contextlib.ExitStack() as stack:
            if self.server is not None:
                stack.enter_context(self.server.running())
            stack.enter_context(self.emulator.running())
            yield self

    def figures(self) -> Watched:
        emulator_cpu = self.emulator.server_user_seconds + self.emulator.server_system_seconds
        # The outer watch's "rest of the machine" still holds the emulator's CPU: take it out.
        outer = self.server or self.emulator
        other = outer.other_cpu_seconds - (emulator_cpu if self.server is not None else 0.0)
        figures: Watched = {
            "emulator_cpu_seconds": emulator_cpu,
            "emulator_peak_rss_mib": self.emulator.peak_kib / 1024,
            "client_cpu_seconds": outer.client_cpu_seconds,
            "other_cpu_seconds": other,
        }
        if self.server is not None:
            figures["server_cpu_seconds"] = self.server.server_user_seconds + self.server.server_system_seconds
            figures["server_peak_rss_mib"] = self.server.peak_kib / 1024
        return figures


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """Median, min and max per size and target, and the ratios of the end-to-end medians."""
    rows = []
    for size_mib in sorted({run.size_mib for run in runs}):
        row: dict[str, Any] = {"size_mib": size_mib}
        for target in TARGETS:
            mine = [run for run in runs if run.size_mib == size_mib and run.target == target]
            if not mine:
                continue
            figures: dict[str, Any] = {
                "runs": len(mine),
                "mib_per_s": _spread([run.mib_per_s for run in mine]),
                "chunks_mib_per_s": _spread([size_mib / run.chunks_seconds for run in mine]),
                "emulator_cpu_seconds": _spread([run.emulator_cpu_seconds for run in mine]),
                "emulator_peak_rss_mib_max": max(run.emulator_peak_rss_mib for run in mine),
                "emulator_rss_after_mib_max": max(run.emulator_rss_after_mib for run in mine),
                "client_cpu_seconds": _spread([run.client_cpu_seconds for run in mine]),
            }
            for name in (
                "server_cpu_seconds",
                "finalize_seconds",
                "cleanup_seconds",
                "server_cpu_finalize_seconds",
                "emulator_cpu_finalize_seconds",
            ):
                values = [value for run in mine if (value := getattr(run, name)) is not None]
                if values:
                    figures[name] = _spread(values)
            peaks = [run.server_peak_rss_mib for run in mine if run.server_peak_rss_mib is not None]
            if peaks:
                figures["server_peak_rss_mib_max"] = max(peaks)
            row[target] = figures
        for other in ("direct", "direct-boto", "local"):
            if "aws" in row and other in row:
                ratio = row["aws"]["mib_per_s"]["median"] / row[other]["mib_per_s"]["median"]
                row[f"ratio_aws_to_{other}"] = ratio
        if "aws" in row and "direct" in row:
            row["ratio_aws_chunks_to_direct"] = (
                row["aws"]["chunks_mib_per_s"]["median"] / row["direct"]["mib_per_s"]["median"]
            )
        rows.append(row)
    return rows


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# --- the targets -------------------------------------------------------------------------------


class LfusysTarget(RealServer):
    """upload_bench's real target, with the emulator watched beside the server.

    On the aws backend, after the file is checked and deleted, it also waits (off the clock) until
    the finalizer's cleanup has deleted the upload's chunk objects, so no run leaves objects in the
    emulator's memory for the next one.
    """

    def __init__(self, name: str, server: Server, emulator: Server, s3: S3Client | None, bucket: str) -> None:
        super().__init__(server)
        self.name = name
        self.emulator = emulator
        self.s3 = s3
        self.bucket = bucket

    async def measure(self, data: TestFile, size_mib: int, concurrency: int, attempt: int) -> Run:
        await self.call("POST", "/auth/refresh", 200)  # off the clock: a fresh access token for the run
        headers = self.session.headers() | {"Content-Type": "application/octet-stream"}
        watch = Watch(self.server.pid, self.emulator.pid)
        async with open_connections(self.server.port, concurrency) as connections:
            with watch.running():
                start = time.perf_counter()
                created = (await self.call("POST", "/uploads", 201, _new_upload(data.size))).json()
                if (created["chunk_size"], created["total_chunks"]) != (data.chunk_size, data.total_chunks):
                    raise RuntimeError(f"{self.name} changed its chunk plan: {created}")
                upload_id = created["upload_id"]
                upload = f"{API}/uploads/{upload_id}"
                await put_chunks(
                    connections,
                    data,
                    lambda n, digest: (f"{upload}/chunks/{n}", headers | {"X-Chunk-Hash": digest}),
                )
                acknowledged = time.perf_counter()
                cpu_at_ack = _cpu(self.server.pid), _cpu(self.emulator.pid)
                file_id = await self._completed(upload_id)
                stop = time.perf_counter()
                cpu_at_stop = _cpu(self.server.pid), _cpu(self.emulator.pid)
        cleanup = await self._chunks_gone(upload_id, stop) if self.s3 is not None else None
        await self.verify_and_delete(file_id, data)
        return Run(
            target=self.name,
            size_mib=size_mib,
            concurrency=concurrency,
            attempt=attempt,
            seconds=stop - start,
            mib_per_s=size_mib / (stop - start),
            chunks_seconds=acknowledged - start,
            finalize_seconds=stop - acknowledged,
            cleanup_seconds=cleanup,
            server_cpu_finalize_seconds=cpu_at_stop[0] - cpu_at_ack[0],
            emulator_cpu_finalize_seconds=cpu_at_stop[1] - cpu_at_ack[1],
            emulator_rss_after_mib=_rss_mib(self.emulator.pid),
            **watch.figures(),
        )

    async def _chunks_gone(self, upload_id: str, completed: float) -> float:
        """Seconds from ``completed`` until no object is left under the upload's prefix."""
        assert self.s3 is not None
        deadline = time.monotonic() + CLEANUP_PATIENCE
        while time.monotonic() < deadline:
            listed = await self.s3.list_objects_v2(Bucket=self.bucket, Prefix=upload_prefix(upload_id), MaxKeys=1)
            if not listed.get("Contents"):
                return time.perf_counter() - completed
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the chunks of upload {upload_id} are still stored {CLEANUP_PATIENCE:.0f} s on")


class DirectS3:
    """The chunks PUT straight into the emulator's S3, with no LFUSYS in between: the ceiling."""

    def __init__(self, emulator: Server, s3: S3Client, bucket: str) -> None:
        self.emulator = emulator
        self.s3 = s3
        self.bucket = bucket

    async def presigned(self, data: TestFile, size_mib: int, concurrency: int, attempt: int) -> Run:
        """minihttp PUTs to presigned URLs, one per chunk, each signing the chunk's SHA-256."""
        keys = _keys(data)
        requests = [await self._presign(key, digest) for key, digest in zip(keys, data.digests, strict=True)]
        watch = Watch(None, self.emulator.pid)
        async with open_connections(self.emulator.port, concurrency) as connections:
            with watch.running():
                start = time.perf_counter()
                await put_chunks(connections, data, lambda n, _: requests[n - 1])
                stop = time.perf_counter()
        return await self._recorded("direct", data, keys, size_mib, concurrency, attempt, stop - start, watch)

    async def boto(self, data: TestFile, size_mib: int, concurrency: int, attempt: int) -> Run:
        """aioboto3 ``put_object`` calls, ``concurrency`` at a time, each chunk read just before it is sent."""
        keys = _keys(data)
        # Off the clock: one request per slot at once, so the client's pool holds that many connections.
        await asyncio.gather(*(self.s3.head_bucket(Bucket=self.bucket) for _ in range(concurrency)))
        numbers = iter(range(1, data.total_chunks + 1))

        async def slot() -> None:
            for n in numbers:
                body = data.body(n)
                await self.s3.put_object(
                    Bucket=self.bucket,
                    Key=keys[n - 1],
                    Body=os.pread(body.fd, body.length, body.offset),
                    ContentLength=body.length,
                    ChecksumSHA256=_checksum(data.digests[n - 1]),
                )

        watch = Watch(None, self.emulator.pid)
        with watch.running():
            start = time.perf_counter()
            async with asyncio.TaskGroup() as group:
                for _ in range(concurrency):
                    group.create_task(slot())
            stop = time.perf_counter()
        return await self._recorded("direct-boto", data, keys, size_mib, concurrency, attempt, stop - start, watch)

    async def _presign(self, key: str, digest: str) -> tuple[str, dict[str, str]]:
        """The path and query of a presigned PUT, and the headers it was signed with."""
        checksum = _checksum(digest)
        url = await self.s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": key, "ChecksumSHA256": checksum},
            ExpiresIn=PRESIGNED_LIFETIME,
        )
        parts = urllib.parse.urlsplit(url)
        signed = urllib.parse.parse_qs(parts.query).get("X-Amz-SignedHeaders", [""])[0]
        if set(signed.split(";")) != {"host", "x-amz-checksum-sha256"}:
            raise RuntimeError(f"unexpected signed headers in a presigned URL: {signed!r}")
        return f"{parts.path}?{parts.query}", {"x-amz-checksum-sha256": checksum}

    async def _recorded(
        self,
        target: str,
        data: TestFile,
        keys: list[str],
        size_mib: int,
        concurrency: int,
        attempt: int,
        seconds: float,
        watch: Watch,
    ) -> Run:
        """Check (off the clock) that every chunk was stored whole, delete them all, and record the run."""
        for key, n in zip(keys, range(1, data.total_chunks + 1), strict=True):
            head = await self.s3.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            if head.get("ChecksumSHA256") != _checksum(data.digests[n - 1]):
                raise RuntimeError(f"{target}: {key} is stored with checksum {head.get('ChecksumSHA256')}")
        deleted = await self.s3.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
        )
        if deleted.get("Errors"):
            raise RuntimeError(f"{target}: objects not deleted: {deleted['Errors'][:3]}")
        return Run(
            target=target,
            size_mib=size_mib,
            concurrency=concurrency,
            attempt=attempt,
            seconds=seconds,
            mib_per_s=size_mib / seconds,
            chunks_seconds=seconds,
            emulator_rss_after_mib=_rss_mib(self.emulator.pid),
            **watch.figures(),
        )


def _keys(data: TestFile) -> list[str]:
    """Fresh object keys, shaped like LFUSYS's chunk keys."""
    run_id = secrets.token_hex(8)
    return [chunk_key(run_id, n) for n in range(1, data.total_chunks + 1)]


def _checksum(sha256: str) -> str:
    """A hex SHA-256 as S3 carries it (base64 of the digest)."""
    return base64.b64encode(bytes.fromhex(sha256)).decode("ascii")


def _cpu(pid: int) -> float:
    user, system = servers.cpu_seconds(pid)
    return user + system


def _rss_mib(pid: int) -> float:
    return (servers.proc_status_kib(pid, "VmRSS") or 0) / 1024


# --- the processes -----------------------------------------------------------------------------


def _base_env() -> dict[str, str]:
    """This process's environment without LFUSYS or AWS settings, so only the benchmark's apply."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("LFUSYS_", "AWS_"))}


def aws_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION} | CREDENTIALS


def start_emulator(workdir: Path) -> Server:
    if not MINISTACK.exists():
        raise RuntimeError(f"MiniStack is not installed ({MINISTACK} is missing): run scripts/bootstrap --test")
    port = servers.free_port()
    # Its pid file goes to TMPDIR: keep it in the workspace.
    env = _base_env() | {"BIND_HOST": HOST, "GATEWAY_PORT": str(port), "LOG_LEVEL": "WARNING", "TMPDIR": str(workdir)}
    return servers.start("emulator", [str(MINISTACK)], env, port, workdir / "emulator.log", REPO)


def start_lfusys(name: str, args: argparse.Namespace, workdir: Path, extra_env: dict[str, str]) -> Server:
    """``lfusys serve`` (one worker) with warning-level JSON logs and a data directory of its own."""
    env = _base_env() | {
        "LFUSYS_DATA_DIR": str(workdir / f"{name}-data"),
        "LFUSYS_LOG_LEVEL": "warning",
        "LFUSYS_LOG_FORMAT": "json",
        **NO_API_RATE_LIMIT,
    }
    env |= extra_env | dict(args.server_env)
    port = servers.free_port()
    argv = [str(Path(sys.executable).parent / "lfusys"), "serve", "--host", HOST, "--port", str(port)]
    return servers.start(name, argv, env, port, workdir / f"{name}-server.log", REPO)


@contextlib.asynccontextmanager
async def s3_client(endpoint: str) -> AsyncIterator[S3Client]:
    """An S3 client with the settings LFUSYS's chunk uploads use (one attempt, no payload signing,
    checksums only where required, path-style addressing)."""
    session = aioboto3.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    config = client_config(AwsSettings(aws_path_style=True), attempts=1, s3=True)
    async with session.client("s3", endpoint_url=endpoint, config=config) as s3:
        yield s3


# --- the sitting -------------------------------------------------------------------------------


async def sitting(args: argparse.Namespace, workdir: Path, started: list[Server]) -> dict[str, Any]:
    """Everything between starting the processes and stopping them; ``started`` lists each process
    as soon as it exists, so the caller stops it whatever happens."""
    emulator = start_emulator(workdir)
    started.append(emulator)
    await servers.wait_ready(emulator, "/_ministack/health", patience=30)
    endpoint = f"http://{HOST}:{emulator.port}"
    prefix = f"bench-{secrets.token_hex(4)}"
    if "aws" in args.targets:
        aws_settings = {
            "LFUSYS_BACKEND": "aws",
            "LFUSYS_AWS_PREFIX": prefix,
            "LFUSYS_AWS_PATH_STYLE": "true",
            "LFUSYS_AWS_CREATE_RESOURCES": "true",
            # One server process: its own rate limits and caches are enough (no Redis to start).
            "LFUSYS_ALLOW_PROCESS_KV": "true",
        }
        started.append(start_lfusys("aws", args, workdir, aws_env(endpoint) | aws_settings))
    if "local" in args.targets:
        started.append(start_lfusys("local", args, workdir, {"LFUSYS_BACKEND": "local"}))
    for server in started[1:]:
        await servers.wait_ready(server, "/health/ready", patience=120)
    startup_hwm = {server.name: _hwm_mib(server.pid) for server in started}
    async with s3_client(endpoint) as s3:
        lfusys = [LfusysTarget(s.name, s, emulator, s3 if s.name == "aws" else None, prefix) for s in started[1:]]
        direct = None
        if {"direct", "direct-boto"} & set(args.targets):
            await s3.create_bucket(Bucket=f"{prefix}-direct")
            direct = DirectS3(emulator, s3, f"{prefix}-direct")
        try:
            files = await _test_files(args, workdir, lfusys)
            runs = await _all_runs(args, files, lfusys, direct)
        finally:
            for target in lfusys:
                await target.control.close()
    return {
        "endpoint": endpoint,
        "aws_prefix": prefix,
        "test_files": {
            size_mib: {"size_bytes": data.size, "chunk_size": data.chunk_size, "total_chunks": data.total_chunks}
            for size_mib, data in files.items()
        },
        "runs": [asdict(run) for run in runs],
        "summary": summarize(runs),
        "processes": {server.name: describe_process(server) for server in started},
        "startup_vm_hwm_mib": startup_hwm,
        "vm_hwm_mib": {server.name: _hwm_mib(server.pid) for server in started},
        "emulator_rss_at_end_mib": _rss_mib(emulator.pid),
    }


def _hwm_mib(pid: int) -> float:
    return (servers.proc_status_kib(pid, "VmHWM") or 0) / 1024


async def _test_files(args: argparse.Namespace, workdir: Path, lfusys: list[LfusysTarget]) -> dict[int, TestFile]:
    """Sign in to each server, learn the chunk size it picks for each size (they must agree), and write
    and hash one random test file per size, all before any clock starts."""
    for target in lfusys:
        await target.sign_up()
    files: dict[int, TestFile] = {}
    for size_mib in args.size_mib:
        size = size_mib * MiB
        chosen = {target.name: await target.chosen_chunk_size(size) for target in lfusys}
        if len(set(chosen.values())) > 1:
            raise RuntimeError(f"the servers pick different chunk sizes for {size_mib} MiB: {chosen}")
        chunk_size = next(iter(chosen.values()), DEFAULT_CHUNK_SIZE)
        print(f"making a {size_mib} MiB test file and hashing its chunks ({chunk_size / MiB:g} MiB) …", flush=True)
        files[size_mib] = make_test_file(workdir / f"test-file-{size_mib}.bin", size, chunk_size)
    return files


async def _all_runs(
    args: argparse.Namespace, files: dict[int, TestFile], lfusys: list[LfusysTarget], direct: DirectS3 | None
) -> list[Run]:
    measures: dict[str, Callable[[TestFile, int, int, int], Awaitable[Run]]] = {
        target.name: target.measure for target in lfusys
    }
    if direct is not None:
        measures |= {"direct": direct.presigned, "direct-boto": direct.boto}
    order = [target for target in TARGETS if target in args.targets]
    runs: list[Run] = []
    try:
        smallest = min(files)
        for target in order:  # not recorded: warms up the processes, their connections and the memory
            run = await measures[target](files[smallest], smallest, args.concurrency, 0)
            print(_run_line(run) + " (warm-up, not counted)", flush=True)
        for size_mib, data in files.items():
            for attempt in range(1, args.repeat + 1):
                for target in order:
                    run = await measures[target](data, size_mib, args.concurrency, attempt)
                    runs.append(run)
                    print(_run_line(run), flush=True)
    finally:
        for data in files.values():
            os.close(data.fd)
    return runs


def _run_line(run: Run) -> str:
    line = f"  {run.size_mib:>5} MiB {run.target:<11} C={run.concurrency:<2} #{run.attempt}:"
    line += f" {run.mib_per_s:7.1f} MiB/s in {run.seconds:6.2f} s"
    if run.finalize_seconds is not None:
        line += f" (chunks {run.chunks_seconds:.2f} s, finalize {run.finalize_seconds:.3f} s"
        line += f" using CPU s: server {run.server_cpu_finalize_seconds:.2f}"
        line += f", emulator {run.emulator_cpu_finalize_seconds:.2f})"
    if run.cleanup_seconds is not None:
        line += f", chunks deleted {run.cleanup_seconds:.2f} s after completed"
    line += ", CPU s:"
    if run.server_cpu_seconds is not None:
        line += f" server {run.server_cpu_seconds:.2f},"
    line += f" emulator {run.emulator_cpu_seconds:.2f}, client {run.client_cpu_seconds:.2f}"
    line += f", rest of machine {run.other_cpu_seconds:.2f}; emulator RSS peak {run.emulator_peak_rss_mib:.0f}"
    return line + f" MiB, after {run.emulator_rss_after_mib:.0f} MiB"


# --- report ------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    """The summary as fixed-width tables: median, with [min-max] where there were several runs."""
    columns: list[tuple[str, int, Callable[[int, dict[str, Any]], str]]] = [
        ("MiB/s end to end", 22, lambda _, figures: _cell(figures, "mib_per_s", ".1f")),
        ("MiB/s chunks", 22, lambda _, figures: _cell(figures, "chunks_mib_per_s", ".1f")),
        ("finalize s", 20, lambda _, figures: _cell(figures, "finalize_seconds", ".3f")),
        ("server CPU s", 20, lambda _, figures: _cell(figures, "server_cpu_seconds", ".2f")),
        ("emulator CPU s", 20, lambda _, figures: _cell(figures, "emulator_cpu_seconds", ".2f")),
        ("CPU s/GiB server/emu/both", 25, _cpu_per_gib),
        ("peak RSS MiB server/emu", 23, _peaks),
    ]
    header = f"{'size MiB':>8} | {'target':<11} | " + " | ".join(f"{title:>{width}}" for title, width, _ in columns)
    lines = [
        f"C={results['arguments']['concurrency']}, {results['repeat']} run(s) per size and target; "
        "MiB/s = size / wall time; median [min-max]",
        "",
        header,
        "-" * len(header),
    ]
    for row in results["summary"]:
        size_mib = row["size_mib"]
        for target in TARGETS:
            if target in row:
                cells = " | ".join(f"{cell(size_mib, row[target]):>{width}}" for _, width, cell in columns)
                lines.append(f"{size_mib:>8} | {target:<11} | {cells}")
    lines += [
        "",
        f"{'size MiB':>8} | {'aws/direct':>10} | {'aws/direct-boto':>15} | {'aws/local':>9} | aws chunks/direct",
    ]
    for row in results["summary"]:
        ratios = [_ratio(row, f"ratio_aws_to_{other}") for other in ("direct", "direct-boto", "local")]
        chunks = _ratio(row, "ratio_aws_chunks_to_direct")
        lines.append(f"{row['size_mib']:>8} | {ratios[0]:>10} | {ratios[1]:>15} | {ratios[2]:>9} | {chunks:>17}")
    lines.append("")
    cleanups = [
        f"{row['size_mib']} MiB: {_cell(row['aws'], 'cleanup_seconds', '.2f')}"
        for row in results["summary"]
        if "cleanup_seconds" in row.get("aws", {})
    ]
    if cleanups:
        lines.append(f"aws: seconds from completed until the chunk objects were deleted: {', '.join(cleanups)}")
    after = []
    for row in results["summary"]:
        largest = max(row[target]["emulator_rss_after_mib_max"] for target in TARGETS if target in row)
        after.append(f"{row['size_mib']} MiB: {largest:.0f}")
    lines.append(
        f"emulator VmRSS MiB once each run's objects were deleted, largest per size: {', '.join(after)}; "
        f"at the end {results['emulator_rss_at_end_mib']:.0f}"
    )
    started = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in results["startup_vm_hwm_mib"].items())
    hwm = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in results["vm_hwm_mib"].items())
    lines += [f"VmHWM after start-up and sign-in: {started}", f"VmHWM at the end: {hwm}"]
    disturbed = [run for run in results["runs"] if _disturbed(run)]
    if disturbed:
        names = ", ".join(f"{run['size_mib']} MiB {run['target']} #{run['attempt']}" for run in disturbed)
        lines.append(f"DISTURBED (the rest of the machine used over 10% of a core): {names}")
    for name, process in results["processes"].items():
        spawned = process["children"] or "none"
        lines.append(f"{name}: pid {process['pid']} `{process['cmdline']}`, child processes: {spawned}")
    return "\n".join(lines)


def _disturbed(run: dict[str, Any]) -> bool:
    """Whether something else ran meanwhile (the floor keeps 10 ms CPU accounting from flagging short runs)."""
    return bool(run["other_cpu_seconds"] > max(0.1 * run["seconds"], 0.1))


def _cell(figures: dict[str, Any], name: str, spec: str) -> str:
    spread = figures.get(name)
    if spread is None:
        return "-"
    text = format(spread["median"], spec)
    if spread["min"] != spread["max"]:
        text += f" [{format(spread['min'], spec)}-{format(spread['max'], spec)}]"
    return text


def _cpu_per_gib(size_mib: int, figures: dict[str, Any]) -> str:
    gib = size_mib / 1024
    emulator = figures["emulator_cpu_seconds"]["median"]
    if "server_cpu_seconds" not in figures:
        return f"- / {emulator / gib:.2f} / {emulator / gib:.2f}"
    server = figures["server_cpu_seconds"]["median"]
    return f"{server / gib:.2f} / {emulator / gib:.2f} / {(server + emulator) / gib:.2f}"


def _peaks(_: int, figures: dict[str, Any]) -> str:
    server = figures.get("server_peak_rss_mib_max")
    return f"{'-' if server is None else format(server, '.0f')} / {figures['emulator_peak_rss_mib_max']:.0f}"


def _ratio(row: dict[str, Any], name: str) -> str:
    return format(row[name], ".2f") if name in row else "-"


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.aws_bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--size-mib", type=int, nargs="+", default=[256, 1024], help="test file sizes in MiB (default: 256 1024)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="chunks in flight (default: 4)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per size and target (default: 2)")
    parser.add_argument("--only", choices=TARGETS, nargs="+", help="measure only these targets")
    parser.add_argument(
        "--server-env",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for both lfusys serve processes (repeatable)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary directory (test files, logs)")
    args = parser.parse_args(argv)
    if min(args.size_mib) < 1 or args.repeat < 1 or args.concurrency < 1:
        parser.error("--size-mib, --repeat and --concurrency must be at least 1")
    args.size_mib = sorted(set(args.size_mib))
    args.targets = tuple(args.only) if args.only else TARGETS
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    results: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "repeat": args.repeat}
    results["arguments"] = {key: value for key, value in vars(args).items() if key != "targets"}
    results["environment"] = environment()
    with workspace(args.keep_data, prefix="lfusys-aws-bench-") as workdir:
        started: list[Server] = []
        try:
            results |= asyncio.run(sitting(args, workdir, started))
        finally:
            # The servers first: the aws server's worker polls the emulator until it stops.
            for server in reversed(started):
                status = servers.stop(server, grace=40.0)
                results.setdefault("exit_status", {})[server.name] = status
            results["logs"] = reported_logs({server.name: server.log_path for server in started}, what="log")
    print()
    print(table(results))
    print(f"\nresults written to {save(results, suffix='-aws')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
