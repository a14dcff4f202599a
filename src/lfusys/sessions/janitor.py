"""Periodic housekeeping: expire sessions, delete the chunks of finished ones, and push on stuck ones.

A session can be stuck because an event was lost (the chunk is stored and its hash saved, but the
worker never recorded it), because every chunk is recorded but nobody claimed the finalization, or
because a finalizing worker died (its lease lapses). All are found here and pushed on, so a lost
event can never leave a full session stuck. A session whose every chunk is stored is never expired:
at its expiry it is finalized instead.

Every item is handled on its own: one that fails is logged (once per kind of failure) and left for
the next sweep, and the sweep goes on with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import msgspec
import structlog

from lfusys.clock import Clock
from lfusys.observability.metrics import UPLOADS
from lfusys.sessions.finalizer import Finalizer, every_chunk_record
from lfusys.sessions.records import UploadSession, UploadStatus
from lfusys.storage.objects import ChunkStored
from lfusys.storage.ports import BlobStore, UploadStore

log = structlog.get_logger(__name__)

_BATCH = 100
_REMEMBERED_FAILURES = 10_000


class SweepReport(msgspec.Struct, kw_only=True):
    expired: int = 0
    finalized_at_expiry: int = 0
    cleaned: int = 0
    chunks_recovered: int = 0
    redriven: int = 0
    failures: int = 0


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
        self._reported: set[tuple[str, str]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            report = await self.sweep()
            if report != SweepReport():
                log.info("janitor sweep", **msgspec.structs.asdict(report))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)

    async def sweep(self) -> SweepReport:
        report = SweepReport()
        now = self._clock()
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("expire", lambda: self._expire_due(now, report)),
            ("clean up", lambda: self._clean_up_finished(report)),
            ("push on stalled", lambda: self._push_on_stalled(now, report)),
        ]
        for step, run in steps:
            await self._isolated(step, "", run(), report)
        return report

    # --- the steps -------------------------------------------------------------------------------

    async def _expire_due(self, now: datetime, report: SweepReport) -> None:
        for session in await self._uploads.due_to_expire(now, _BATCH):
            await self._isolated("expire", session.id, self._expire_or_finalize(session, now, report), report)

    async def _expire_or_finalize(self, session: UploadSession, now: datetime, report: SweepReport) -> None:
        stored = set(await self._blobs.list_chunks(session.id))
        if stored >= set(range(1, session.total_chunks + 1)):
            # Everything arrived, only events went missing: the user's bytes become their file.
            recorded = {chunk.n for chunk in await every_chunk_record(self._uploads, session.id) if chunk.recorded}
            report.chunks_recovered += await self._record(session, sorted(stored - recorded))
            await self._finalizer.finalize(session.id)
            report.finalized_at_expiry += 1
            log.warning("a full session reached its expiry; finalized instead", upload_id=session.id)
        elif await self._uploads.expire(session.id, now):
            report.expired += 1
            UPLOADS.labels("expired").inc()

    async def _clean_up_finished(self, report: SweepReport) -> None:
        for session in await self._uploads.needing_cleanup(_BATCH):
            failed = session.status is UploadStatus.FAILED
            await self._isolated("clean up", session.id, self._finalizer.clean_up(session.id, failed=failed), report)
            report.cleaned += 1

    async def _push_on_stalled(self, now: datetime, report: SweepReport) -> None:
        for session in await self._uploads.stalled(now, now - self._stalled_after, _BATCH):
            await self._isolated("push on stalled", session.id, self._push_on(session, report), report)

    async def _push_on(self, session: UploadSession, report: SweepReport) -> None:
        if session.status.accepts_chunks:
            records = await every_chunk_record(self._uploads, session.id)
            unrecorded = [chunk.n for chunk in records if not chunk.recorded]
            report.chunks_recovered += await self._record(session, unrecorded)
        if await self._finalizer.finalize(session.id):
            report.redriven += 1

    # --- helpers ---------------------------------------------------------------------------------

    async def _record(self, session: UploadSession, chunks: list[int]) -> int:
        """Record chunks whose storage events never arrived (recording twice is harmless)."""
        await self._finalizer.on_chunks_stored([ChunkStored(upload_id=session.id, n=n) for n in chunks])
        if chunks:
            log.warning("recovered chunks whose events were lost", upload_id=session.id, chunks=len(chunks))
        return len(chunks)

    async def _isolated(self, step: str, item: str, work: Awaitable[None], report: SweepReport) -> None:
        """Run one item; a failure is logged the first time it happens and never stops the sweep."""
        try:
            await work
        except Exception as exc:
            report.failures += 1
            key = (item or step, type(exc).__name__)
            if key in self._reported:
                log.debug("janitor step failed again", step=step, item=item, error=type(exc).__name__)
                return
            if len(self._reported) >= _REMEMBERED_FAILURES:
                self._reported.clear()
            self._reported.add(key)
            log.exception("janitor step failed; it will be retried", step=step, item=item)
