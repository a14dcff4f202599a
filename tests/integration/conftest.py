"""A real server with small chunks, for what the test client cannot do (stream a request body, serve
requests concurrently): one per test module and backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support import LiveServer, signed_in


@pytest.fixture(scope="module")
def small_chunk_server(tmp_path_factory: pytest.TempPathFactory, backend_name: str) -> Iterator[LiveServer]:
    """``lfusys serve`` on the test's backend with 1 KiB minimum and 4 KiB default chunks."""
    root = tmp_path_factory.mktemp("live")
    server = LiveServer(
        root / "data",
        root / "server.log",
        backend=backend_name,
        LFUSYS_MIN_CHUNK_SIZE="1024",
        LFUSYS_DEFAULT_CHUNK_SIZE="4096",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def live(small_chunk_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of :func:`small_chunk_server`, signed in as a new user, with room for many requests at once."""
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=small_chunk_server.url, timeout=20, limits=limits) as c:
        await signed_in(c, f"{uuid.uuid4().hex}@example.com")
        yield c
