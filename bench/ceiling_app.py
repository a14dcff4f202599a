"""The ceiling: the least a server must do to accept one checked chunk, for comparison with LFUSYS.

``PUT /chunks/{n}`` with header ``X-Chunk-Hash`` streams the body into a temporary file while hashing
it, answers 422 if the SHA-256 differs from the header, otherwise fsyncs the file (dropping its pages
from the page cache, like the real server), renames it to ``chunk_{n}`` and answers 200. There is no
authentication, database, session or event queue: whatever the real server is slower by is the price
of those.

To be a fair ceiling it uses the same technique as ``lfusys.storage.local.blobs`` (deliberately not
imported, so this stays a baseline): received pieces are gathered into ~1 MiB blocks, and each block is
hashed and written in a worker thread while the next block is received, one block in flight at a time.

Run it with ``python -m uvicorn bench.ceiling_app:app`` (chunks go to ``$LFUSYS_BENCH_CEILING_DIR``, or
a fresh temporary directory when it is unset), or build an app with :func:`create_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import anyio.to_thread
from litestar import Litestar, Request, put
from litestar.exceptions import HTTPException

DIRECTORY_ENV = "LFUSYS_BENCH_CEILING_DIR"
_BLOCK = 1024 * 1024


class _BlockWriter:
    """Hashes and writes blocks in a worker thread, one block in flight while the next is received."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.digest = hashlib.sha256()
        self._in_flight: asyncio.Future[None] | None = None

    def _write(self, block: bytes) -> None:
        self.digest.update(block)
        view = memoryview(block)
        while view:
            view = view[os.write(self.fd, view) :]

    async def submit(self, block: bytes) -> None:
        await self.drain()
        self._in_flight = asyncio.ensure_future(anyio.to_thread.run_sync(self._write, block))

    async def drain(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            await in_flight


def _make_durable(fd: int) -> None:
    """fsync, then drop the written pages from the page cache, as the real server does."""
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


async def _receive(request: Request[Any, Any, Any], writer: _BlockWriter) -> None:
    """Gather the body's pieces into ~1 MiB blocks and hand each to the writer."""
    pending: list[bytes] = []
    pending_bytes = 0
    async for piece in request.stream():
        pending.append(piece)
        pending_bytes += len(piece)
        if pending_bytes >= _BLOCK:
            await writer.submit(b"".join(pending))
            pending, pending_bytes = [], 0
    if pending:
        await writer.submit(b"".join(pending))
    await writer.drain()


def create_app(directory: Path) -> Litestar:
    """An app that stores chunk ``n`` as ``directory/chunk_{n}``."""
    directory.mkdir(parents=True, exist_ok=True)

    @put("/chunks/{n:int}", status_code=200, request_max_body_size=None)
    async def put_chunk(n: int, request: Request[Any, Any, Any]) -> dict[str, int]:
        expected = request.headers.get("x-chunk-hash", "").strip().lower()
        final = directory / f"chunk_{n}"
        temporary = directory / f".chunk_{n}.{secrets.token_hex(6)}.part"
        fd = await anyio.to_thread.run_sync(os.open, temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        writer = _BlockWriter(fd)
        try:
            await _receive(request, writer)
            if writer.digest.hexdigest() != expected:
                raise HTTPException(status_code=422, detail=f"chunk {n} does not match X-Chunk-Hash")
            await anyio.to_thread.run_sync(_make_durable, fd)
            await anyio.to_thread.run_sync(os.replace, temporary, final)
        except BaseException:
            with contextlib.suppress(Exception):  # a block may still be in flight
                await writer.drain()
            temporary.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        return {"n": n}

    return Litestar(route_handlers=[put_chunk])


def _directory_from_env() -> Path:
    configured = os.environ.get(DIRECTORY_ENV)
    return Path(configured) if configured else Path(tempfile.mkdtemp(prefix="lfusys-ceiling-"))


app = create_app(_directory_from_env())
