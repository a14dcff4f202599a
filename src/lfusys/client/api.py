"""The LFUSYS API client: :class:`AsyncClient` and its synchronous facade :class:`Client`.

Only httpx and the standard library: a script that uploads files needs none of the server's packages.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import random
import ssl
import threading
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from lfusys import __version__
from lfusys.client.errors import AuthError, FileChanged, LfusysError, NotFound, ServerError, UploadFailed
from lfusys.client.transport import ChunkTransport

API = "/api/v1"
SCOPES = ("upload", "read", "delete")
_FINISHED = frozenset({"completed", "failed", "cancelled", "expired"})
_ALWAYS_RETRIED = frozenset({429, 503})
"""Answered before the server acted: retried even for a request that is not idempotent."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class FileInfo:
    """A stored file, as ``GET /api/v1/files/{id}`` describes it."""

    id: str
    name: str
    type: str
    size: int
    checksum: str
    """SHA-256 (hex) of the concatenated raw SHA-256 digests of the file's chunks (see :func:`chunk_checksum`)."""
    created_at: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> FileInfo:
        return cls(
            id=str(body["id"]),
            name=str(body["name"]),
            type=str(body["type"]),
            size=int(body["size"]),
            checksum=str(body["checksum"]),
            created_at=str(body["created_at"]),
        )


UploadEvent = Literal["start", "chunk", "finalizing", "done"]


@dataclass(frozen=True)
class UploadProgress:
    """Where an upload stands, given to ``on_progress`` when it starts, after every chunk sent, while the
    server assembles the file, and when it is done."""

    event: UploadEvent
    path: Path
    upload_id: str
    done_bytes: int
    """Bytes the server holds: those stored before this run plus those sent in it."""
    total_bytes: int
    done_chunks: int
    total_chunks: int
    resumed_chunks: int
    """Chunks already stored (and checked against the local file) when this run started."""
    sent_bytes: int
    """Bytes sent by this run."""


@dataclass(frozen=True)
class DownloadProgress:
    file_id: str
    path: Path
    received_bytes: int
    """Bytes in the ``.part`` file so far (those of an earlier, interrupted download included)."""
    total_bytes: int


UploadCallback = Callable[[UploadProgress], None]
DownloadCallback = Callable[[DownloadProgress], None]
Sleep = Callable[[float], Awaitable[None]]


def chunk_checksum(digests: Iterable[bytes]) -> str:
    """The server's file checksum: SHA-256 of the chunks' raw SHA-256 digests, in chunk order."""
    outer = hashlib.sha256()
    for digest in digests:
        outer.update(digest)
    return outer.hexdigest()


class AsyncClient:
    """An LFUSYS account, reached with a personal API token (``lfusys_…``); use it with ``async with``.

    Requests are retried with exponential backoff and jitter on connection errors, timeouts, 408, 429 and
    503 (after ``Retry-After`` seconds when the server says), and other 5xx; other 4xx are errors at once.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 60.0,
        finalize_timeout: float = 3600.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._finalize_timeout = finalize_timeout
        self._transport = transport
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {token}", "user-agent": f"lfusys-client/{__version__}"},
            timeout=self._timeout,
            transport=transport or _api_transport(httpx.URL(self.base_url)),
        )
        self._chunks = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._http.headers,
            timeout=self._timeout,
            transport=transport or _chunk_transport(self._http.base_url),
        )
        """For chunk PUTs: the lean :class:`ChunkTransport` (about a third less client CPU per byte than
        httpx's own), unless a proxy is configured for the server or a transport was given."""
        self._storage: httpx.AsyncClient | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._chunks.aclose()
        if self._storage is not None:
            await self._storage.aclose()

    # --- account and files --------------------------------------------------------------------

    async def me(self) -> dict[str, Any]:
        """``{id, email, name, providers}`` of the token's user."""
        return await self._json("GET", f"{API}/auth/me")

    async def file(self, file_id: str) -> FileInfo:
        return FileInfo.of(await self._json("GET", f"{API}/files/{file_id}"))

    async def list_files(self) -> list[FileInfo]:
        """Every file of the user, newest first."""
        return [FileInfo.of(body) async for body in self._pages(f"{API}/files", "files", 100)]

    async def delete(self, file_id: str) -> None:
        await self._request("DELETE", f"{API}/files/{file_id}")

    # --- upload -------------------------------------------------------------------------------

    async def upload(
        self,
        path: str | os.PathLike[str],
        *,
        concurrency: int = 4,
        on_progress: UploadCallback | None = None,
        resume: bool = True,
    ) -> FileInfo:
        """Upload the file at ``path`` (under its base name) and return the stored file, once verified.

        With ``resume``, an unfinished upload of the same name and size is carried on: every chunk it
        already stored must match the local file (else :class:`FileChanged`, before anything is sent),
        and only the missing chunks are sent. ``concurrency`` chunks are in flight at once, and each
        sender reads and hashes its next chunk while this one is on the wire, so memory holds about
        ``2 * concurrency`` chunks. An exception raised by ``on_progress`` stops the upload (it can be
        resumed).
        """
        local = Path(path)
        before = _stat(local)
        size = before.st_size
        if size == 0:
            raise LfusysError(f"{local}: an empty file cannot be uploaded")
        found = await self._unfinished(local.name, size) if resume else None
        if found is None:
            created = await self._json(
                "POST",
                f"{API}/uploads",
                idempotent=False,
                json={
                    "file_name": local.name,
                    "file_type": mimetypes.guess_type(local.name)[0] or "application/octet-stream",
                    "file_size": size,
                },
            )
            upload_id, chunk_size, total = created["upload_id"], created["chunk_size"], created["total_chunks"]
            stored: dict[int, str | None] = {}
        else:
            upload_id, chunk_size, total = found["upload_id"], found["chunk_size"], found["total_chunks"]
            stored = await self._stored_chunks(upload_id)
        plan = _Plan(local, size, chunk_size, total)
        digests: dict[int, bytes] = {}

        async def check(n: int) -> None:
            digest = await asyncio.to_thread(plan.digest, n)
            if digest.hex() != stored[n]:
                raise FileChanged(
                    f"{local}: the file changed since its interrupted upload {upload_id} (chunk {n} differs)"
                )
            digests[n] = digest

        await _each([n for n, known in stored.items() if known is not None], concurrency, check)
        # A stored chunk without a known hash is sent again: harmless if equal, 409 if it differs.
        missing = [n for n in range(1, total + 1) if n not in digests]
        progress = _UploadState(local, upload_id, plan, on_progress, resumed=list(digests))
        progress.report("start")

        async def send(n: int, data: memoryview, digest: bytes) -> None:
            try:
                await self._request(
                    "PUT",
                    f"{API}/uploads/{upload_id}/chunks/{n}",
                    via=self._chunks,
                    content=_Body(data),
                    headers={
                        "x-chunk-hash": digest.hex(),
                        "content-type": "application/octet-stream",
                        "content-length": str(len(data)),
                    },
                )
            except LfusysError as exc:
                if exc.status == 409:
                    raise FileChanged(
                        f"{local}: the file changed since its interrupted upload {upload_id} (chunk {n} differs)"
                    ) from None
                if exc.status == 410:
                    raise UploadFailed(f"{local}: upload {upload_id} was cancelled or expired") from None
                raise
            digests[n] = digest
            progress.sent(len(data))

        await _send_read_ahead(plan, missing, concurrency, send)
        after = _stat(local)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise FileChanged(f"{local}: the file changed while it was being uploaded")
        progress.report("finalizing")
        state = await self._finished(upload_id)
        if state["status"] != "completed":
            reason = state.get("failure_reason") or "no reason given"
            raise UploadFailed(f"{local}: upload {upload_id} {state['status']}: {reason}")
        info = await self.file(str(state["file_id"]))
        expected = chunk_checksum(digests[n] for n in range(1, total + 1))
        if info.size != size or info.checksum != expected:
            raise UploadFailed(
                f"{local}: the stored file {info.id} does not match (size {info.size}, checksum {info.checksum};"
                f" expected size {size}, checksum {expected})"
            )
        progress.report("done")
        return info

    async def _unfinished(self, name: str, size: int) -> dict[str, Any] | None:
        """The newest unfinished upload of ``name`` and ``size``, if any."""
        async for upload in self._pages(f"{API}/uploads", "uploads", 100):
            if upload["file_name"] == name and upload["file_size"] == size and upload["status"] not in _FINISHED:
                return upload
        return None

    async def _stored_chunks(self, upload_id: str) -> dict[int, str | None]:
        """Chunk number → SHA-256 hex (``None`` if the server did not say) of every stored chunk."""
        stored: dict[int, str | None] = {}
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = await self._json("GET", f"{API}/uploads/{upload_id}/chunks", params=params)
            hashes: dict[str, str] = page.get("hashes") or {}
            for n in page["chunks"]:
                stored[int(n)] = hashes.get(str(n))
            cursor = page.get("next_cursor")
            if not cursor:
                return stored

    async def _finished(self, upload_id: str) -> dict[str, Any]:
        """Poll the upload until it is completed, failed, cancelled or expired."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._finalize_timeout
        interval = 0.01
        while True:
            state = await self._json("GET", f"{API}/uploads/{upload_id}")
            if state["status"] in _FINISHED:
                return state
            if loop.time() > deadline:
                raise ServerError(f"upload {upload_id} is still {state['status']} after {self._finalize_timeout:g}s")
            await self._sleep(interval)
            interval = min(interval * 1.5, 1.0)

    # --- download -----------------------------------------------------------------------------

    async def download(
        self, file_id: str, dest_path: str | os.PathLike[str], *, on_progress: DownloadCallback | None = None
    ) -> FileInfo:
        """Save the file's bytes at ``dest_path``: streamed into ``dest_path.part`` (carried on with
        ``Range`` if it exists), which is renamed once it holds the file's size."""
        info = await self.file(file_id)
        dest = Path(dest_path)
        part = dest.with_name(dest.name + ".part")
        url = str((await self._json("GET", f"{API}/files/{file_id}/download"))["url"])
        attempt = 0
        while True:
            have = part.stat().st_size if part.exists() else 0
            if have == info.size:
                break
            if have > info.size:
                part.unlink()
                have = 0
            headers = {"range": f"bytes={have}-"} if have else {}
            delay: float | None = None
            try:
                async with self._link_client(url).stream("GET", url, headers=headers) as response:
                    if response.status_code in (401, 403) and attempt < self._retries:
                        # The signed link expired: ask for a fresh one.
                        url = str((await self._json("GET", f"{API}/files/{file_id}/download"))["url"])
                        delay = 0.0
                    elif response.status_code == 416:
                        part.unlink(missing_ok=True)
                        delay = 0.0
                    elif _retryable(response.status_code) and attempt < self._retries:
                        delay = _retry_after(response) or self._delay(attempt)
                    elif response.status_code >= 400:
                        await response.aread()
                        raise _error_of(response)
                    else:
                        received = have if response.status_code == 206 else 0
                        with part.open("ab" if response.status_code == 206 else "wb") as out:
                            async for block in response.aiter_bytes(1 << 20):
                                out.write(block)
                                received += len(block)
                                if on_progress is not None:
                                    on_progress(DownloadProgress(file_id, dest, received, info.size))
                        if received != info.size:
                            delay = self._delay(attempt)
            except httpx.TransportError as exc:
                if attempt >= self._retries:
                    raise ServerError(f"downloading {file_id}: {_describe(exc)}") from None
                delay = self._delay(attempt)
            if delay is not None:
                if attempt >= self._retries:
                    raise ServerError(f"downloading {file_id}: the transfer kept breaking off")
                attempt += 1
                await self._sleep(delay)
        part.replace(dest)
        return info

    def _link_client(self, url: str) -> httpx.AsyncClient:
        """This client for a link to the server; a client without the token for one to another host (an
        S3 presigned URL must not carry it, and need not)."""
        target = httpx.URL(url)
        if target.is_relative_url or (target.scheme, target.netloc) == (
            self._http.base_url.scheme,
            self._http.base_url.netloc,
        ):
            return self._http
        if self._storage is None:
            self._storage = httpx.AsyncClient(timeout=self._timeout, transport=self._transport)
        return self._storage

    # --- HTTP ---------------------------------------------------------------------------------

    async def _pages(self, path: str, key: str, limit: int) -> AsyncIterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            page = await self._json("GET", path, params=params)
            for item in page[key]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def _json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        response = await self._request(method, path, **options)
        body: dict[str, Any] = response.json()
        return body

    async def _request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        via: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> httpx.Response:
        """Send with retries (``via`` a client other than the API one); an error answer raises the
        matching :class:`LfusysError`."""
        attempt = 0
        while True:
            try:
                response = await (via or self._http).request(method, path, **options)
            except httpx.TransportError as exc:
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                if attempt >= self._retries or not (idempotent or unsent):
                    raise ServerError(f"{method} {self.base_url}{path}: {_describe(exc)}") from None
                delay = self._delay(attempt)
            else:
                status = response.status_code
                if status < 400:
                    return response
                if attempt >= self._retries or not _retryable(status) or not (idempotent or status in _ALWAYS_RETRIED):
                    raise _error_of(response)
                delay = _retry_after(response) or self._delay(attempt)
            attempt += 1
            await self._sleep(delay)

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: between half and all of ``backoff * 2**attempt`` (capped)."""
        ceiling = min(self._max_backoff, self._backoff * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


class _Body:
    """A chunk's bytes (a view of a reused buffer) as a request body; iterable again for a retry."""

    def __init__(self, data: memoryview) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data  # type: ignore[misc]  # any bytes-like object will do for a body


class _Plan:
    """How the local file splits into chunks."""

    def __init__(self, path: Path, size: int, chunk_size: int, total: int) -> None:
        self.path = path
        self.size = size
        self.chunk_size = chunk_size
        self.total = total

    def length(self, n: int) -> int:
        return min(self.chunk_size, self.size - (n - 1) * self.chunk_size)

    def read_into(self, n: int, buffer: bytearray) -> tuple[memoryview, bytes]:
        """Chunk ``n`` read into ``buffer``: its bytes (a view of ``buffer``) and their SHA-256 digest."""
        view = memoryview(buffer)[: self.length(n)]
        with self.path.open("rb", buffering=0) as f:
            f.seek((n - 1) * self.chunk_size)
            filled = 0
            while filled < len(view):
                got = f.readinto(view[filled:])
                if not got:
                    raise FileChanged(f"{self.path}: the file changed while it was being uploaded (it is shorter)")
                filled += got
        return view, hashlib.sha256(view).digest()

    def digest(self, n: int) -> bytes:
        """Chunk ``n``'s SHA-256 digest, read in pieces of at most 8 MiB."""
        digest = hashlib.sha256()
        left = self.length(n)
        with self.path.open("rb") as f:
            f.seek((n - 1) * self.chunk_size)
            while left > 0:
                piece = f.read(min(left, 8 << 20))
                if not piece:
                    raise FileChanged(f"{self.path}: the file changed since its interrupted upload (it is shorter)")
                digest.update(piece)
                left -= len(piece)
        return digest.digest()


class _UploadState:
    def __init__(
        self, path: Path, upload_id: str, plan: _Plan, on_progress: UploadCallback | None, resumed: Iterable[int]
    ) -> None:
        self.path = path
        self.upload_id = upload_id
        self.plan = plan
        self.on_progress = on_progress
        lengths = [plan.length(n) for n in resumed]
        self.resumed = len(lengths)
        self.done_chunks = len(lengths)
        self.done_bytes = sum(lengths)
        self.sent_bytes = 0

    def sent(self, size: int) -> None:
        self.done_chunks += 1
        self.done_bytes += size
        self.sent_bytes += size
        self.report("chunk")

    def report(self, event: UploadEvent) -> None:
        if self.on_progress is not None:
            self.on_progress(
                UploadProgress(
                    event=event,
                    path=self.path,
                    upload_id=self.upload_id,
                    done_bytes=self.done_bytes,
                    total_bytes=self.plan.size,
                    done_chunks=self.done_chunks,
                    total_chunks=self.plan.total,
                    resumed_chunks=self.resumed,
                    sent_bytes=self.sent_bytes,
                )
            )


async def _each(numbers: Sequence[int], concurrency: int, work: Callable[[int], Awaitable[None]]) -> None:
    """``work`` on every number, ``concurrency`` at once; the first error cancels the rest and is raised."""
    pending = iter(numbers)

    async def worker() -> None:
        for n in pending:
            await work(n)

    await _together(min(max(concurrency, 1), len(numbers)), worker)


async def _together(count: int, worker: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``count`` runs of ``worker`` at once; the first error cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(count):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def _send_read_ahead(
    plan: _Plan, numbers: Sequence[int], concurrency: int, send: Callable[[int, memoryview, bytes], Awaitable[None]]
) -> None:
    """``send(n, bytes, digest)`` for every chunk number, ``concurrency`` at once. Each sender owns two
    buffers: while one chunk is on the wire the next is read and hashed (in a thread) into the other, so
    the connection is not idle while hashing, and no memory is allocated per chunk. The first error
    cancels the rest and is raised."""
    pending = iter(numbers)

    def read_next(buffer: bytearray) -> tuple[int, asyncio.Task[tuple[memoryview, bytes]]] | None:
        n = next(pending, None)
        if n is None:
            return None
        reading = asyncio.ensure_future(asyncio.to_thread(plan.read_into, n, buffer))
        reading.add_done_callback(lambda done: done.cancelled() or done.exception())  # never "not retrieved"
        return n, reading

    async def sender() -> None:
        buffers = [bytearray(plan.length(1)), bytearray(plan.length(1))]
        upcoming = read_next(buffers[0])
        try:
            while upcoming is not None:
                n, reading = upcoming
                data, digest = await reading
                buffers.reverse()  # ``data`` is in buffers[1] now; the next chunk is read into buffers[0]
                upcoming = read_next(buffers[0])
                await send(n, data, digest)
        finally:
            if upcoming is not None:
                upcoming[1].cancel()

    await _together(min(max(concurrency, 1), len(numbers)), sender)


def _api_transport(server: httpx.URL) -> httpx.AsyncHTTPTransport | None:
    """For a plain-http server, a transport that loads no certificate store (that takes 15 ms at every
    start, and this client only ever speaks to the server's own origin): its TLS context trusts
    nothing, so TLS would fail closed. Else (https, or a proxy to reach) httpx's default."""
    if server.scheme != "http" or _proxied(server):
        return None
    return httpx.AsyncHTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))


def _chunk_transport(server: httpx.URL) -> ChunkTransport | None:
    """:class:`ChunkTransport`, unless a proxy is to be used (then httpx's own, which speaks to it)."""
    return None if _proxied(server) else ChunkTransport()


def _proxied(server: httpx.URL) -> bool:
    """Whether the environment names a proxy for ``server`` (``HTTP_PROXY``, ``NO_PROXY`` …)."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(server.scheme) or proxies.get("all")
    return bool(proxy) and not urllib.request.proxy_bypass(server.host)


def _stat(path: Path) -> os.stat_result:
    try:
        stat = path.stat()
    except OSError as exc:
        raise LfusysError(f"{path}: {exc.strerror or exc}") from None
    if not path.is_file():
        raise LfusysError(f"{path}: not a regular file")
    return stat


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _error_of(response: httpx.Response) -> LfusysError:
    """The exception for an error answer, with the server's ``{"error": ...}`` message."""
    status = response.status_code
    try:
        body = response.json()
        message = str(body["error"]) if isinstance(body, dict) and "error" in body else response.text
    except ValueError:
        message = response.text
    message = " ".join(message.split())[:300] or response.reason_phrase
    text = f"{message} (HTTP {status})"
    if status in (401, 403):
        return AuthError(text, status)
    if status == 404:
        return NotFound(text, status)
    if status >= 500 or status in _ALWAYS_RETRIED:
        return ServerError(text, status)
    return LfusysError(text, status)


# --- signing in ---------------------------------------------------------------------------------


async def create_token(
    server: str,
    email: str,
    password: str,
    *,
    name: str,
    scopes: Sequence[str] = SCOPES,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """Sign in as a browser would (CSRF cookie, password), make a personal API token, sign out again;
    return the token's secret."""
    async with httpx.AsyncClient(base_url=server.rstrip("/"), timeout=60.0, transport=transport) as http:
        try:
            await http.get(f"{API}/auth/me")
            response = await http.post(
                f"{API}/auth/login", json={"email": email, "password": password}, headers=_csrf(http)
            )
            if response.status_code != 200:
                raise _error_of(response)
            response = await http.post(
                f"{API}/tokens", json={"name": name, "scopes": list(scopes)}, headers=_csrf(http)
            )
            if response.status_code != 201:
                raise _error_of(response)
            token = str(response.json()["token"])
            await http.post(f"{API}/auth/logout", headers=_csrf(http))
        except httpx.TransportError as exc:
            raise ServerError(f"{server}: {_describe(exc)}") from None
    return token


def _csrf(http: httpx.AsyncClient) -> dict[str, str]:
    for cookie in http.cookies.jar:
        if cookie.name.endswith("lfusys_csrf") and cookie.value:
            return {"x-csrf-token": cookie.value}
    raise LfusysError("the server handed out no CSRF cookie: is that an LFUSYS server?")


# --- the synchronous facade ---------------------------------------------------------------------


class Client:
    """:class:`AsyncClient` for synchronous code: it runs in an event loop on a thread of its own (so it
    works inside another event loop too). ``on_progress`` callbacks are called on that thread. Close it,
    or use it with ``with``."""

    def __init__(self, base_url: str, token: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lfusys-client", daemon=True)
        self._thread.start()
        self._closed = False

        async def make() -> AsyncClient:
            return AsyncClient(base_url, token, **options)

        self._client = self._call(make())

    def _call(self, work: Coroutine[Any, Any, _T]) -> _T:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C in the caller's thread stops the work too
            raise

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._client.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def me(self) -> dict[str, Any]:
        return self._call(self._client.me())

    def file(self, file_id: str) -> FileInfo:
        return self._call(self._client.file(file_id))

    def list_files(self) -> list[FileInfo]:
        return self._call(self._client.list_files())

    def delete(self, file_id: str) -> None:
        self._call(self._client.delete(file_id))

    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        concurrency: int = 4,
        on_progress: UploadCallback | None = None,
        resume: bool = True,
    ) -> FileInfo:
        return self._call(self._client.upload(path, concurrency=concurrency, on_progress=on_progress, resume=resume))

    def download(
        self, file_id: str, dest_path: str | os.PathLike[str], *, on_progress: DownloadCallback | None = None
    ) -> FileInfo:
        return self._call(self._client.download(file_id, dest_path, on_progress=on_progress))
