"""Every metadata adapter runs the same contract tests.

To add a backend, add its name to ``BACKENDS`` and a branch in each fixture below that yields an
opened, empty instance of that backend's adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import pytest

from lfusys.storage.local import Database, SqliteMetadataStore, apply_migrations
from lfusys.storage.local.blobs import LocalBlobStore
from lfusys.storage.local.queue import LocalEventQueue
from lfusys.storage.ports import BlobStore, EventQueue, MetadataStore

BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
async def metadata_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    if request.param == "sqlite":
        database = await Database.open(tmp_path / "contract.sqlite3")
        await apply_migrations(database)
        try:
            yield SqliteMetadataStore(database)
        finally:
            await database.close()
    else:  # pragma: no cover - a new backend must be wired here
        raise AssertionError(f"no fixture for backend {request.param}")


class BlobBackend(msgspec.Struct):
    """A blob store and what it has emitted as storage events so far."""

    store: BlobStore
    events: list[str]


class QueueBackend(msgspec.Struct):
    """An event queue, how to put a message on it, and how to see its dead letters."""

    queue: EventQueue
    send: Callable[[str], Awaitable[None]]
    dead_letters: Callable[[], Awaitable[list[str]]]
    max_receives: int


@pytest.fixture(params=BACKENDS)
async def blob_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobBackend]:
    if request.param == "sqlite":
        events: list[str] = []

        async def collect(body: str) -> None:
            events.append(body)

        yield BlobBackend(store=LocalBlobStore(tmp_path / "blobs", on_object_created=collect), events=events)
    else:  # pragma: no cover
        raise AssertionError(f"no fixture for backend {request.param}")


@pytest.fixture(params=BACKENDS)
async def queue_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QueueBackend]:
    if request.param == "sqlite":
        database = await Database.open(tmp_path / "queue.sqlite3")
        await apply_migrations(database)
        queue = LocalEventQueue(database, max_receives=2)

        async def dead_letters() -> list[str]:
            return [letter.body for letter in await queue.dead_letters()]

        try:
            yield QueueBackend(queue=queue, send=queue.send, dead_letters=dead_letters, max_receives=2)
        finally:
            await database.close()
    else:  # pragma: no cover
        raise AssertionError(f"no fixture for backend {request.param}")
