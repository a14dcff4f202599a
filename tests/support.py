"""Helpers shared by the tests: the backends, settings, sign-up/sign-in through HTTP, a live server
process, and session states reached through the ports (never through SQL or file paths)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from litestar import Litestar

from lfusys.auth.records import User
from lfusys.clock import Clock
from lfusys.services import Services, build_services, open_services, services_from
from lfusys.sessions.records import UploadSession, UploadStatus
from lfusys.sessions.schemas import CreateUpload
from lfusys.settings import Settings, load_settings
from lfusys.storage.backend import server_keys
from lfusys.storage.objects import ChunkStored
from lfusys.storage.ports import EventQueue
from lfusys.storage.redis import RedisKV
from tests.aws_emulator import aws_env, aws_overrides

BACKENDS = ["local", "memory", "aws"]
"""Every backend the suite runs on: the contract suites and every backend-neutral integration test run
once per name (tests marked ``local_only`` run on ``local`` alone). A new backend joins here."""
DURABLE_BACKENDS = ["local", "aws"]
READY = {
    "local": {"status": "ok", "metadata": "ok"},
    "memory": {"status": "ok", "metadata": "ok"},
    "aws": {"status": "ok", "s3": "ok", "sqs": "ok", "dynamodb": "ok"},
}
"""What ``/health/ready`` answers on each backend when every dependency answers."""
"""The backends whose data outlives a process and is shared by processes (``durable_only`` tests)."""


class FakeClock:
    """Real time plus an offset the test moves forward, so "later" needs no waiting and no SQL."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


BASE_URL = "http://127.0.0.1:8000"
API = "/api/v1"
PASSWORD = "correct horse battery"

# argon2 at its cheapest: tests exercise the code paths, not the cost.
FAST_ARGON2: dict[str, Any] = {"argon2_time_cost": 1, "argon2_memory_cost_kib": 1024, "argon2_parallelism": 1}
ROOMY_RATE_LIMITS: dict[str, int] = {
    "rate_limit_login": 100_000,
    "rate_limit_login_email": 100_000,
    "rate_limit_register": 100_000,
    "rate_limit_auth": 100_000,
    "rate_limit_api": 100_000,
}
"""Limits a live server shared by a module's tests never reaches: they all sign up and in from 127.0.0.1
(still counted, so the code path runs; tests/integration/auth/test_rate_limits.py tests the limits)."""
ROOMY_RATE_LIMIT_ENV = {f"LFUSYS_{name.upper()}": str(value) for name, value in ROOMY_RATE_LIMITS.items()}


class AppClient(httpx.AsyncClient):
    """A client of ``app`` that runs the app in the test's own event loop, and, used as a context
    manager, its lifespan too (as a server would: startup on entry, shutdown on exit).

    One loop for test and app means a test can call the app's services directly on any backend (the
    aws backend's clients belong to the loop that opened them), and requests from one test may run
    concurrently. Not entered, it is another browser of an app whose lifespan is already running.
    """

    def __init__(
        self, app: Litestar, base_url: str = BASE_URL, cookies: httpx._types.CookieTypes | None = None
    ) -> None:
        super().__init__(
            transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50000)),  # type: ignore[arg-type]
            base_url=base_url,
            cookies=cookies,
            follow_redirects=True,
            headers={"user-agent": "testclient"},
        )
        self.app = app
        self._lifespan: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> AppClient:
        # The lifespan runs in a task of its own: it must end in the task it began in, and a fixture's
        # setup and teardown may run in different tasks.
        started = asyncio.get_running_loop().create_future()
        self._lifespan = asyncio.create_task(self._run_lifespan(started))
        await started
        await super().__aenter__()
        return self

    async def _run_lifespan(self, started: asyncio.Future[None]) -> None:
        try:
            async with self.app.lifespan():
                started.set_result(None)
                await self._stopping.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
                return
            raise

    async def __aexit__(self, *exc_info: Any) -> None:
        await super().__aexit__(*exc_info)
        if self._lifespan is not None:
            self._stopping.set()
            await self._lifespan


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings isolated from the real environment, with a private data directory (on the aws backend,
    resources of its own on the emulator, named after the data directory)."""
    # No web app unless a test brings one: the API behaves the same whether or not web/dist is built.
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "log_format": "json",
        "web_dir": data_dir / "no-web-app",
        **FAST_ARGON2,
        **(aws_overrides(data_dir) if overrides.get("backend") == "aws" else {}),
        **overrides,
    }
    return load_settings({}, **values)


async def csrf_headers(client: httpx.AsyncClient, cookie_name: str = "lfusys_csrf") -> dict[str, str]:
    """The header a browser page would send, after a GET has handed out the CSRF cookie."""
    if cookie_name not in client.cookies:
        await client.get(f"{API}/auth/me")
    return {"x-csrf-token": client.cookies[cookie_name]}


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, name: str = "Ada"
) -> httpx.Response:
    return await client.post(
        f"{API}/auth/register",
        json={"name": name, "email": email, "password": password},
        headers=await csrf_headers(client),
    )


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(
        f"{API}/auth/login", json={"email": email, "password": password}, headers=await csrf_headers(client)
    )


async def signed_in(client: httpx.AsyncClient, email: str = "ada@example.com") -> dict[str, Any]:
    """Register ``email`` and sign in; return the user."""
    assert (await register(client, email)).status_code == 201
    response = await login(client, email)
    assert response.status_code == 200, response.text
    user: dict[str, Any] = response.json()
    return user


async def another_user(client: AppClient, email: str = "eve@example.com") -> AppClient:
    """Another signed-in user of the app ``client`` runs, with a cookie jar of their own.

    It shares ``client``'s event loop thread and lifespan (a second lifespan would open a second backend).
    """
    other = AppClient(client.app)
    await signed_in(other, email)
    return other


def log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines in captured stderr."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def lfusys_command() -> list[str]:
    return [sys.executable, "-m", "lfusys"]


def subprocess_env(data_dir: Path, **variables: str) -> dict[str, str]:
    """The environment of a child ``lfusys`` process: this one's, without its ``LFUSYS_*`` and ``REDIS_URL``,
    plus the test's settings (and, with ``LFUSYS_BACKEND=aws``, the emulator's)."""
    # First, since it may start the emulator and set the AWS_* variables copied below.
    aws = aws_env(data_dir) if variables.get("LFUSYS_BACKEND") == "aws" else {}
    env = {key: value for key, value in os.environ.items() if not key.startswith("LFUSYS_") and key != "REDIS_URL"}
    env.update(aws)
    env.update(
        LFUSYS_DATA_DIR=str(data_dir),
        LFUSYS_WEB_DIR=str(data_dir / "no-web-app"),
        LFUSYS_LOG_FORMAT="json",
        LFUSYS_ARGON2_TIME_COST="1",
        LFUSYS_ARGON2_MEMORY_COST_KIB="1024",
        LFUSYS_ARGON2_PARALLELISM="1",
        **ROOMY_RATE_LIMIT_ENV,
    )
    env.update(variables)
    return env


def stop_process(process: subprocess.Popen[bytes], grace: float = 30) -> int:
    """SIGTERM (by PID), wait up to ``grace`` seconds for a graceful exit, then kill; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class LiveServer:
    """``lfusys serve`` in a child process on a free loopback port, stopped by its PID. Its public URL
    is its own address unless ``LFUSYS_PUBLIC_URL`` says otherwise."""

    def __init__(
        self, data_dir: Path, log_path: Path, *, backend: str = "local", workers: int = 1, **variables: str
    ) -> None:
        self._start(data_dir, log_path, backend, workers, free_port(), variables)

    def restarted(self) -> LiveServer:
        """The same server started again (after :meth:`stop`), on the same port and data, logging on."""
        again = object.__new__(LiveServer)
        again._start(self.data_dir, self.log_path, self.backend, self.workers, self.port, self.variables)
        return again

    def _start(
        self, data_dir: Path, log_path: Path, backend: str, workers: int, port: int, variables: dict[str, str]
    ) -> None:
        self.data_dir, self.log_path, self.backend, self.workers, self.variables = (
            data_dir,
            log_path,
            backend,
            workers,
            variables,
        )
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("ab")  # a restart on the same log appends
        self.process = subprocess.Popen(
            [
                *lfusys_command(),
                *("serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)),
            ],
            env=subprocess_env(data_dir, LFUSYS_BACKEND=backend, **{"LFUSYS_PUBLIC_URL": self.url, **variables}),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_live()

    def _wait_until_live(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not become live in time")

    def stop(self) -> int:
        returncode = stop_process(self.process)
        self._log.close()
        return returncode


# --- uploads ---------------------------------------------------------------------------------

SMALL_CHUNKS: dict[str, Any] = {"min_chunk_size": 1024, "default_chunk_size": 4096}
"""Settings that make multi-chunk uploads out of a few KiB (with make_settings / app_factory)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunks_of(data: bytes, chunk_size: int) -> list[bytes]:
    return [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]


async def start_upload(
    client: httpx.AsyncClient,
    size: int,
    *,
    name: str = "data.bin",
    file_type: str = "application/octet-stream",
    chunk_size: int | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"file_name": name, "file_type": file_type, "file_size": size}
    if chunk_size is not None:
        body["chunk_size"] = chunk_size
    return await client.post(f"{API}/uploads", json=body, headers=await csrf_headers(client))


async def put_chunk(
    client: httpx.AsyncClient, upload_id: str, n: int, data: bytes, sha256: str | None = None
) -> httpx.Response:
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256 or sha256_hex(data)}
    return await client.put(f"{API}/uploads/{upload_id}/chunks/{n}", content=data, headers=headers)


async def wait_for_status(
    client: httpx.AsyncClient, upload_id: str, status: str = "completed", within: float = 10.0
) -> dict[str, Any]:
    """Poll ``GET /uploads/{id}`` until it reports ``status``; fail with the last state if it does not."""
    deadline = time.monotonic() + within
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = (await client.get(f"{API}/uploads/{upload_id}")).json()
        if state.get("status") == status:
            return state
        await asyncio.sleep(0.02)
    raise AssertionError(f"upload {upload_id} did not reach {status!r}: {state}")


async def upload_file(client: httpx.AsyncClient, data: bytes, name: str = "data.bin") -> dict[str, Any]:
    """Upload ``data`` in order and wait until it is completed; return the final upload state."""
    created = (await start_upload(client, len(data), name=name)).json()
    for n, chunk in enumerate(chunks_of(data, created["chunk_size"]), start=1):
        response = await put_chunk(client, created["upload_id"], n, chunk)
        assert response.status_code == 200, response.text
    return await wait_for_status(client, created["upload_id"])


async def download(client: httpx.AsyncClient, file_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """Fetch a file's bytes through its signed link (see :func:`follow_link`)."""
    link = (await client.get(f"{API}/files/{file_id}/download")).json()
    return await follow_link(client, link["url"], headers)


async def follow_link(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """Fetch a download link as whoever holds it: a link to the app by its path and query, through
    ``client`` (so any base URL works); a link to another host (an S3 presigned URL) from that host,
    without ``client``'s cookies."""
    target = httpx.URL(url)
    if not target.is_relative_url and _origin(target) != _origin(client.base_url):
        async with httpx.AsyncClient(trust_env=False) as storage:
            return await storage.get(target, headers=headers or {})
    parts = urlsplit(url)
    return await client.get(f"{parts.path}?{parts.query}", headers=headers or {})


def _origin(url: httpx.URL) -> tuple[str, bytes]:
    return url.scheme, url.netloc


async def body_of(data: bytes) -> AsyncIterator[bytes]:
    """A request body that arrives in one piece."""
    yield data


# --- session states, reached through the ports -------------------------------------------------

ANOTHER_WORKER = "another-worker"
"""A finalizing worker that is not the app's own."""


def services_of(client: AppClient) -> Services:
    """The services of the app ``client`` runs (its lifespan must have started)."""
    return services_from(client.app.state)


async def stored_session(services: Services, upload_id: str) -> UploadSession:
    session = await services.backend.uploads.get(upload_id)
    assert session is not None
    return session


async def make_finalizing(services: Services, clock: Clock, upload_id: str) -> UploadSession:
    """Every chunk's event recorded and the finalization claimed by :data:`ANOTHER_WORKER`, whose lease
    outlives the test (nobody else takes the session over)."""
    uploads = services.backend.uploads
    session = await stored_session(services, upload_id)
    await uploads.record_chunks([ChunkStored(upload_id, n) for n in range(1, session.total_chunks + 1)], clock())
    claimed = await uploads.claim_finalize(upload_id, ANOTHER_WORKER, clock(), clock() + timedelta(days=7))
    assert claimed is not None
    return claimed


async def make_failed(services: Services, clock: Clock, upload_id: str, reason: str = "chunk 1 is missing") -> None:
    """Finalizing, then failed by the worker holding it."""
    await make_finalizing(services, clock, upload_id)
    assert await services.backend.uploads.fail(upload_id, ANOTHER_WORKER, reason, clock())


def pass_expiry(services: Services, clock: FakeClock) -> None:
    """Move ``clock`` past the expiry of every session started so far (and of every access token:
    a client signs in again to go on)."""
    clock.advance(services.settings.uploads.upload_ttl + timedelta(seconds=1))


async def make_expired(services: Services, clock: FakeClock, upload_id: str) -> None:
    """Past its expiry and marked expired, as the janitor does."""
    pass_expiry(services, clock)
    assert await services.backend.uploads.expire(upload_id, clock())


# --- the pipeline, driven through the services (no HTTP) ---------------------------------------

PIPELINE_SETTINGS: dict[str, Any] = {**SMALL_CHUNKS}
"""Small chunks. The services are opened without their background work: the test runs the worker and the
janitor itself."""


@contextlib.asynccontextmanager
async def opened_services(data_dir: Path, clock: Clock, backend: str, **overrides: Any) -> AsyncIterator[Services]:
    """The services over a freshly opened backend, with :data:`PIPELINE_SETTINGS` and ``overrides``."""
    settings = make_settings(data_dir, backend=backend, **{**PIPELINE_SETTINGS, **overrides})
    async with open_services(settings, server_keys(settings), clock) as services:
        yield services


def another_worker(services: Services, clock: Clock) -> Services:
    """A second set of services over the same backend: another finalizer, worker and janitor, with a
    worker id of their own (as another process would have), sharing the Redis KV if there is one."""
    redis = services.kv if isinstance(services.kv, RedisKV) else None
    return build_services(services.settings, server_keys(services.settings), services.backend, clock, redis)


async def register_owner(services: Services, email: str = "ada@example.com") -> User:
    return await services.auth.register(name="Ada", email=email, password=PASSWORD)


async def stored_upload(services: Services, owner: User, data: bytes, order: list[int] | None = None) -> UploadSession:
    """Start a session and store chunks through the ingress (all, or those in ``order``); their storage
    events are queued, not consumed."""
    session = await services.sessions.start(
        owner, CreateUpload(file_name="data.bin", file_type="application/octet-stream", file_size=len(data))
    )
    chunks = chunks_of(data, session.chunk_size)
    for n in order or range(1, len(chunks) + 1):
        chunk = chunks[n - 1]
        await services.ingress.receive(
            owner, session.id, n, sha256=sha256_hex(chunk), content_length=len(chunk), body=body_of(chunk)
        )
    return session


async def record_all(services: Services, clock: Clock, session: UploadSession) -> None:
    """Record every chunk's storage event, as the worker would (without finalizing)."""
    chunks = [ChunkStored(session.id, n) for n in range(1, session.total_chunks + 1)]
    await services.backend.uploads.record_chunks(chunks, clock())


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Wait until ``check`` holds; fail if it does not within ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def status_of(services: Services, upload_id: str) -> UploadStatus:
    return (await stored_session(services, upload_id)).status


async def completed(services: Services, upload_id: str) -> bool:
    session = await services.backend.uploads.get(upload_id)
    return session is not None and session.status is UploadStatus.COMPLETED


async def lose_queued_events(services: Services) -> int:
    """Take every visible storage event off the queue without handling it; return how many."""
    return len(await take_queued_events(services))


async def take_queued_events(services: Services) -> list[str]:
    """Take every visible storage event off the queue without handling it; return their bodies.

    Events go out beside a store's answer, not before it (as S3's do): this waits until a short long
    poll comes back empty."""
    return await drain_events(services.backend.queue)


async def drain_events(queue: EventQueue) -> list[str]:
    """Take every visible message off ``queue`` (waiting until a short long poll comes back empty); return
    the bodies of the storage events among them, leaving out the test message S3 sends when a bucket's
    notifications are set up."""
    bodies: list[str] = []
    while messages := await queue.receive(10, 0.1, 3600):
        for message in messages:
            if json.loads(message.body).get("Event") != "s3:TestEvent":
                bodies.append(message.body)
            await queue.delete(message.receipt)
    return bodies


async def chunks_deleted(services: Services, upload_id: str) -> bool:
    """Whether the blob store holds no chunk of the upload (a finished upload's are deleted just after it
    is reported finished: wait for it with :func:`eventually`)."""
    return await services.backend.blobs.list_chunks(upload_id) == []


async def file_bytes(services: Services, file_id: str) -> bytes:
    return b"".join([block async for block in services.backend.blobs.read_file(file_id, None)])


async def file_ids(services: Services, owner: User) -> list[str]:
    """The ids of ``owner``'s file records, newest first."""
    page = await services.backend.files.list_by_owner(owner.id, 100, None)
    assert page.next_cursor is None
    return [record.id for record in page.files]


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


class WorkerProcess:
    """``lfusys worker`` in a child process, stopped by its PID."""

    def __init__(self, data_dir: Path, log_path: Path, **variables: str) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*lfusys_command(), "worker"],
                env=subprocess_env(data_dir, **variables),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_started()

    def _wait_until_started(self, timeout: float = 20.0) -> None:
        """Until it logs that it runs (its SIGTERM handler is installed by then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if '"worker started"' in self.log_path.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("worker did not start in time")

    def stop(self) -> int:
        return stop_process(self.process)
