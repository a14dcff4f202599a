"""The event worker: long-polls the storage-event queue and hands chunk events to the finalizer.

Events come and go in batches (up to ten messages, as SQS hands them out): a batch's chunks are
recorded in one step and its messages acknowledged together. A message whose chunk completes a
session stays hidden (its visibility extended) until that session is finalized, so a worker dying
mid-finalization leaves it to be delivered again; the others are acknowledged at once. At most
``concurrency`` batches are handled at once. Malformed messages are left alone and end in the
dead-letter store. On stop, batches in hand get ``grace`` seconds to finish; the rest of their
messages are made visible again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import structlog

from lfusys.observability.metrics import EVENT_AGE_SECONDS
from lfusys.sessions.finalizer import Finalizer
from lfusys.sessions.renewal import kept_renewed
from lfusys.storage.objects import ChunkStored, MalformedEvent, chunks_in_event
from lfusys.storage.ports import EventQueue, QueueMessage

log = structlog.get_logger(__name__)

_MAX_BATCH = 10  # the SQS limit for one receive
_RETRY_DELAY = 1.0
T = TypeVar("T")


class EventWorker:
    def __init__(
        self,
        *,
        queue: EventQueue,
        finalizer: Finalizer,
        concurrency: int,
        visibility_timeout: timedelta,
        wait_time: timedelta,
        grace: timedelta = timedelta(seconds=20),
    ) -> None:
        self._queue = queue
        self._finalizer = finalizer
        self._concurrency = concurrency
        self._visibility = visibility_timeout.total_seconds()
        self._wait = wait_time.total_seconds()
        self._grace = grace.total_seconds()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then drain (bounded by the grace period)."""
        slots = asyncio.Semaphore(self._concurrency)
        handlers: set[asyncio.Task[None]] = set()
        async with asyncio.TaskGroup() as group:
            try:
                while not stop.is_set():
                    if not await _unless_stopped(slots.acquire(), stop):
                        break
                    messages = await self._receive(stop)
                    if not messages:
                        slots.release()
                        continue
                    handler = group.create_task(self._handle(messages, slots))
                    handlers.add(handler)
                    handler.add_done_callback(handlers.discard)
            finally:
                await self._drain(handlers)

    async def _receive(self, stop: asyncio.Event) -> list[QueueMessage]:
        try:
            received = await _unless_stopped(self._queue.receive(_MAX_BATCH, self._wait, self._visibility), stop)
        except Exception:
            # The queue is down (or flaky): keep trying, never let the worker die.
            log.exception("receiving events failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=_RETRY_DELAY)
            return []
        return received or []

    async def _drain(self, handlers: set[asyncio.Task[None]]) -> None:
        if not handlers:
            return
        log.info("waiting for in-flight events", count=len(handlers))
        _, unfinished = await asyncio.wait(set(handlers), timeout=self._grace)
        for handler in unfinished:
            handler.cancel()

    async def _handle(self, messages: list[QueueMessage], slots: asyncio.Semaphore) -> None:
        pending = {message.receipt: message for message in messages}
        try:
            async with kept_renewed(
                lambda: self._extend(pending.values()), every=self._visibility / 2, what="message visibility"
            ):
                events = self._events_in(messages)
                _note_event_age([event for found in events.values() for event in found])
                ready = await self._finalizer.record([event for found in events.values() for event in found])
                finishing = {session.id for session in ready}
                done = [receipt for receipt, found in events.items() if not finishing & {e.upload_id for e in found}]
                await self._acknowledge(pending, done)
                for upload_id in finishing:
                    completing = [e for found in events.values() for e in found if e.upload_id == upload_id]
                    await self._finalizer.finalize(upload_id, completing)
                    receipts = [r for r, found in events.items() if upload_id in {e.upload_id for e in found}]
                    await self._acknowledge(pending, [r for r in receipts if r in pending])
        except asyncio.CancelledError:
            # Shutting down: let another worker (or this one after a restart) take them right away.
            with contextlib.suppress(Exception):
                for message in pending.values():
                    await self._queue.extend_visibility(message.receipt, 0)
            raise
        except Exception:
            # Never let one batch end the worker: what it left comes back after its visibility timeout.
            log.exception("event handling failed; it will be retried", messages=len(pending))
        finally:
            slots.release()

    def _events_in(self, messages: list[QueueMessage]) -> dict[str, list[ChunkStored]]:
        """The chunk events of each well-formed message, by receipt; malformed ones are left alone."""
        events: dict[str, list[ChunkStored]] = {}
        for message in messages:
            try:
                events[message.receipt] = chunks_in_event(message.body)
            except MalformedEvent as exc:
                log.warning("malformed event left for the dead-letter queue", message_id=message.id, reason=str(exc))
        return events

    async def _acknowledge(self, pending: dict[str, QueueMessage], receipts: list[str]) -> None:
        if receipts:
            await self._queue.delete(*receipts)
            for receipt in receipts:
                del pending[receipt]

    async def _extend(self, messages: Iterable[QueueMessage]) -> bool:
        for message in list(messages):
            await self._queue.extend_visibility(message.receipt, self._visibility)
        return True


def _note_event_age(events: list[ChunkStored]) -> None:
    """How far behind the worker is: the age of the oldest event of the batch in hand."""
    times = [event.stored_at for event in events if event.stored_at is not None]
    if times:
        EVENT_AGE_SECONDS.set(max(0.0, (datetime.now(UTC) - min(times)).total_seconds()))


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """``work``'s result, or ``None`` if ``stop`` is set first and cancels it (whatever ``work``
    returns all the same is returned)."""
    working = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if working.done():
        return working.result()
    working.cancel()
    try:
        # Work that finishes despite the cancellation (asyncio.wait_for on Python 3.11 may hand back a
        # result that arrives together with it) keeps its result: received messages must not be lost.
        return await working
    except asyncio.CancelledError:
        return None
