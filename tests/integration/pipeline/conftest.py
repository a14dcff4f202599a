"""Fixtures that open the embedded backend directly (no HTTP), with the background work off."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from lfusys.app import open_services
from lfusys.keys import load_or_create_keys
from lfusys.services import Services
from lfusys.sessions.schemas import CreateUpload
from lfusys.settings import Settings
from lfusys.storage.local import Database, SqliteMetadataStore
from lfusys.storage.ports import UploadSession, UploadStatus, User
from tests.support import SMALL_CHUNKS, FakeClock, chunks_of, make_settings, sha256_hex

PIPELINE_SETTINGS: dict[str, Any] = {**SMALL_CHUNKS, "run_worker": False}


@pytest.fixture
def pipeline_settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, **PIPELINE_SETTINGS)


@pytest.fixture
async def services(pipeline_settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    async with open_services(pipeline_settings, load_or_create_keys(pipeline_settings), clock) as opened:
        yield opened


@pytest.fixture
async def owner(services: Services) -> User:
    return await services.auth.register(name="Ada", email="ada@example.com", password="correct horse battery")


async def stored_upload(services: Services, owner: User, data: bytes, order: list[int] | None = None) -> UploadSession:
    """Start a session and store every chunk through the ingress (events are queued, not consumed)."""
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


async def body_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Wait until ``check`` holds; fail if it does not within ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def completed(services: Services, upload_id: str) -> bool:
    session = await services.metadata.uploads.get(upload_id)
    return session is not None and session.status is UploadStatus.COMPLETED


async def lose_queued_events(services: Services) -> int:
    """Take every queued storage event off the queue without handling it; return how many."""
    lost = 0
    while messages := await services.queue.receive(10, 0, 3600):
        for message in messages:
            await services.queue.delete(message.receipt)
        lost += len(messages)
    return lost


async def file_bytes(services: Services, file_id: str) -> bytes:
    return b"".join([block async for block in services.blobs.read_file(file_id, None)])


def database(services: Services) -> Database:
    """The SQLite database behind the embedded backend, for looking at rows directly."""
    return cast(SqliteMetadataStore, services.metadata).database


def random_bytes(size: int) -> bytes:
    return os.urandom(size)
