"""The memory backend: every port in this process's memory. Nothing survives the process, and
nothing is shared with another one (so it runs with one server process only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lfusys.clock import Clock
from lfusys.files.signing import SignedLinks
from lfusys.keys import ServerKeys, new_keys
from lfusys.settings import Settings
from lfusys.storage.memory.accounts import MemoryApiTokenStore, MemoryTokenStore, MemoryUserStore
from lfusys.storage.memory.blobs import MemoryBlobStore
from lfusys.storage.memory.kv import MemoryKV
from lfusys.storage.memory.metadata import MemoryMetadata
from lfusys.storage.memory.queue import MemoryEventQueue
from lfusys.storage.memory.tus import MemoryTusStore
from lfusys.storage.ports import Backend


def memory_keys(settings: Settings) -> ServerKeys:
    """Keys made afresh for this process (secrets from the environment still win)."""
    return new_keys(settings)


@asynccontextmanager
async def open_memory_backend(settings: Settings, keys: ServerKeys, clock: Clock) -> AsyncIterator[Backend]:
    metadata = MemoryMetadata(clock)
    queue = MemoryEventQueue(max_receives=settings.queue.queue_max_receives)
    links = SignedLinks(keys.download_signing)

    async def always_answers() -> None:
        return None

    yield Backend(
        name="memory",
        description="memory: every upload, file and account is lost when the process exits",
        users=MemoryUserStore(metadata),
        tokens=MemoryTokenStore(metadata),
        api_tokens=MemoryApiTokenStore(metadata),
        uploads=metadata.uploads,
        tus=MemoryTusStore(),
        files=metadata.files,
        blobs=MemoryBlobStore(on_object_created=queue.send, links=links),
        queue=queue,
        kv=MemoryKV(clock),
        links=links,
        checks={"metadata": always_answers},
    )
