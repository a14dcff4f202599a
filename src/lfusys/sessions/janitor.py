"""Periodic housekeeping: expire sessions, delete the chunks of finished ones, and re-drive stuck ones.

A session can be stuck because an event was lost (the chunk is stored but was never recorded) or
because a finalizing worker died (its lease lapses). Both are found here and pushed on, so a lost
event can never leave a full session stuck forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import msgspec
import structlog

from lfusys.clock import Clock
from lfusys.sessions.events import ChunkStored
from lfusys.sessions.finalizer import Finalizer
from lfusys.storage.ports import BlobStore, UploadStatus, UploadStore

log = structlog.get_logger(__name__)

_BATCH = 100


class SweepReport(msgspec.Struct, kw_only=True):
    expired: int = 0
    cleaned: int = 0
    orphans_removed: int = 0
    chunks_recovered: int = 0
    redriven: int = 0


class Janitor:
    def __init__(
        self,
        *,
        uploads: UploadStore,
        blobs: BlobStore,
        finalizer: Finalizer,
        interval: timedelta,
        stalled_after: timedelta,
        clock: Clock,
    ) -> None:
        self._uploads = uploads
        self._blobs = blobs
        self._finalizer = finalizer
        self._interval = interval.total_seconds()
        self._stalled_after = stalled_after
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                report = await self.sweep()
                if report != SweepReport():
                    log.info("janitor sweep", **msgspec.structs.asdict(report))
            except Exception:
                log.exception("janitor sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)

    async def sweep(self) -> SweepReport:
        report = SweepReport()
        now = self._clock()
        report.expired = len(await self._uploads.expire_due(now))
        report.cleaned = await self._delete_finished_chunks()
        report.orphans_removed = await self._remove_orphans()
        for session in await self._uploads.stalled(now, now - self._stalled_after, _BATCH):
            if session.status is UploadStatus.IN_PROGRESS:
                report.chunks_recovered += await self._record_unrecorded(session.id)
            if await self._finalizer.finalize(session.id):
                report.redriven += 1
        return report

    async def _delete_finished_chunks(self) -> int:
        sessions = await self._uploads.needing_cleanup(_BATCH)
        for session in sessions:
            await self._blobs.delete_upload(session.id)
            await self._uploads.mark_cleaned(session.id, self._clock())
        return len(sessions)

    async def _remove_orphans(self) -> int:
        """Chunk folders whose session is gone or finished (e.g. a chunk that landed after a cancel)."""
        removed = 0
        for upload_id in await self._blobs.upload_prefixes():
            session = await self._uploads.get(upload_id)
            if session is None or session.status.finished:
                await self._blobs.delete_upload(upload_id)
                removed += 1
        return removed

    async def _record_unrecorded(self, upload_id: str) -> int:
        """Chunks in the blob store whose storage event never arrived."""
        recorded = {chunk.n for chunk in await self._uploads.list_chunks(upload_id) if chunk.recorded}
        missing = [n for n in await self._blobs.list_chunks(upload_id) if n not in recorded]
        for n in missing:
            await self._finalizer.on_chunk_stored(ChunkStored(upload_id=upload_id, n=n))
        if missing:
            log.warning("recovered chunks whose events were lost", upload_id=upload_id, chunks=len(missing))
        return len(missing)
