"""Fixtures for the uploads tests: a signed-in client of an app with small chunks, and a real server with the
same chunk sizes for what the test client cannot do (stream a request body, serve requests concurrently)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import AppFactory
from tests.support import BASE_URL, SMALL_CHUNKS, LiveServer, signed_in


@pytest.fixture
async def client(app_factory: AppFactory) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client of an app with :data:`~tests.support.SMALL_CHUNKS`, signed in as ada@example.com."""
    async with AsyncTestClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL) as c:
        await signed_in(c)
        yield c


@pytest.fixture(scope="module")
def small_chunk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``lfusys serve`` with 1 KiB minimum and 4 KiB default chunks, one per test module.

    Its data directory is ``data`` next to its log (see :func:`tests.support.live_blob_root`).
    """
    root = tmp_path_factory.mktemp("live")
    server = LiveServer(
        root / "data", root / "server.log", LFUSYS_MIN_CHUNK_SIZE="1024", LFUSYS_DEFAULT_CHUNK_SIZE="4096"
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
