"""The embedded backend: everything under one data directory (SQLite for metadata and the event
queue, the filesystem for bytes) and the in-process KV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from lfusys.clock import Clock
from lfusys.files.signing import SignedLinks
from lfusys.keys import ServerKeys
from lfusys.settings import Settings
from lfusys.storage.local.accounts import SqliteApiTokenStore, SqliteTokenStore, SqliteUserStore
from lfusys.storage.local.blobs import LocalBlobStore
from lfusys.storage.local.database import Database, apply_migrations
from lfusys.storage.local.files import SqliteFileStore
from lfusys.storage.local.queue import LocalEventQueue
from lfusys.storage.local.tus import SqliteTusStore
from lfusys.storage.local.uploads import SqliteUploadStore
from lfusys.storage.memory.kv import MemoryKV
from lfusys.storage.ports import Backend

_FILE_THREADS = 32


@asynccontextmanager
async def open_local_backend(settings: Settings, keys: ServerKeys, clock: Clock) -> AsyncIterator[Backend]:
    database = await Database.open(settings.local.database_path)
    # Chunk bodies are written and fsynced here: room for every chunk of a busy server at once.
    file_work = ThreadPoolExecutor(max_workers=_FILE_THREADS, thread_name_prefix="blobs")
    try:
        await apply_migrations(database)
        queue = LocalEventQueue(database, max_receives=settings.queue.queue_max_receives)
        links = SignedLinks(keys.download_signing)

        async def database_answers() -> None:
            await database.fetch_one("SELECT 1")

        yield Backend(
            name="local",
            description=f"local: data in {settings.local.data_dir.resolve()}",
            users=SqliteUserStore(database),
            tokens=SqliteTokenStore(database),
            api_tokens=SqliteApiTokenStore(database),
            uploads=SqliteUploadStore(database),
            tus=SqliteTusStore(database),
            files=SqliteFileStore(database),
            blobs=LocalBlobStore(
                settings.local.blob_root, on_object_created=queue.send, links=links, executor=file_work
            ),
            queue=queue,
            kv=MemoryKV(clock),
            links=links,
            checks={"metadata": database_answers},
        )
    finally:
        file_work.shutdown(wait=True)
        await database.close()


async def migrate_local(settings: Settings) -> list[str]:
    database = await Database.open(settings.local.database_path)
    try:
        return await apply_migrations(database)
    finally:
        await database.close()
