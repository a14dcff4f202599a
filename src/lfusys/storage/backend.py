"""One backend, opened from settings: the bundle of adapters the app needs, whatever the backend.

``LFUSYS_BACKEND`` chooses it: ``local`` (the embedded default: filesystem, SQLite and a SQLite event
queue under the data directory), ``memory`` (everything in the process, gone at exit: for tests and
for trying the product out). ``app.py`` and ``cli.py`` know nothing else about storage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lfusys.clock import Clock
from lfusys.keys import ServerKeys, load_or_create_keys
from lfusys.settings import Settings
from lfusys.storage.local.backend import migrate_local, open_local_backend
from lfusys.storage.memory.backend import memory_keys, open_memory_backend
from lfusys.storage.ports import Backend


def server_keys(settings: Settings) -> ServerKeys:
    """The keys every process of this deployment signs with (tokens, CSRF, download links)."""
    if settings.core.backend == "memory":
        return memory_keys(settings)
    return load_or_create_keys(settings)


@asynccontextmanager
async def open_backend(settings: Settings, keys: ServerKeys, clock: Clock) -> AsyncIterator[Backend]:
    """Open the configured backend for the life of the block (its schema migrated first)."""
    opener = open_memory_backend if settings.core.backend == "memory" else open_local_backend
    async with opener(settings, keys, clock) as backend:
        yield backend


async def migrate(settings: Settings) -> list[str]:
    """Bring the backend's schema up to date; return what was applied."""
    if settings.core.backend == "memory":
        return []
    return await migrate_local(settings)
