"""The first page of each owner's file list, cached beside the file store (see :mod:`lfusys.cache`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from lfusys.cache import OwnedCache
from lfusys.files.records import FilePage, FileRecord
from lfusys.storage.ports import KV, FileStore

FIRST_PAGES = "files:first"
"""The kind of cached value (:mod:`lfusys.cache`) a first page is."""


def _owned_by(page: FilePage, owner_id: str) -> bool:
    return all(record.owner_id == owner_id for record in page.files)


class CachedFileStore:
    """A :class:`~lfusys.storage.ports.FileStore` whose first pages (no cursor) are cached, one per page
    size, and whose writes invalidate the owner's pages once they are done.

    Only first pages: they are what the files page shows on every visit, and each later page is named by
    a cursor that changes as files come and go. Every page size is cached (one key each, at most 100 per
    owner): a change moves the owner to a new generation, so invalidation costs one write whatever the
    number of sizes cached.

    Every write to the files goes through here (the finalizer's and the library's store), on any
    process; with a KV shared by every process, so does every invalidation.
    """

    def __init__(self, files: FileStore, kv: KV, ttl: timedelta) -> None:
        self._files = files
        self._first_pages = OwnedCache(kv, kind=FIRST_PAGES, value_type=FilePage, ttl=ttl, owned_by=_owned_by)

    # Each write and its invalidation are shielded together: a caller cancelled half-way (a client gone,
    # a worker stopping) must not leave a change the cache does not know of.

    async def create_if_absent(self, record: FileRecord) -> FileRecord:
        return await asyncio.shield(self._create_if_absent(record))

    async def _create_if_absent(self, record: FileRecord) -> FileRecord:
        stored = await self._files.create_if_absent(record)
        # Also when it existed: the attempt that created it may have died before invalidating.
        await self._first_pages.changed(record.owner_id)
        return stored

    async def get(self, file_id: str) -> FileRecord | None:
        return await self._files.get(file_id)

    async def list_by_owner(self, owner_id: str, limit: int, cursor: str | None) -> FilePage:
        if cursor is not None:
            return await self._files.list_by_owner(owner_id, limit, cursor)

        async def first_page() -> FilePage:
            return await self._files.list_by_owner(owner_id, limit, None)

        return await self._first_pages.get(owner_id, str(limit), first_page)

    async def delete(self, file_id: str, owner_id: str) -> FileRecord | None:
        return await asyncio.shield(self._delete(file_id, owner_id))

    async def _delete(self, file_id: str, owner_id: str) -> FileRecord | None:
        deleted = await self._files.delete(file_id, owner_id)
        if deleted is not None:
            await self._first_pages.changed(owner_id)
        return deleted
