"""The event worker: long-polls the storage-event queue and hands chunk events to the finalizer.

At most ``concurrency`` messages are handled at once, across batches. A message is deleted only after
it was handled; while it is being handled its visibility is extended, so a long finalization is not
handed to a second worker. Malformed messages are left alone and end in the dead-letter store.
On stop, in-flight messages get ``grace`` seconds to finish; the rest are made visible again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

import structlog

from lfusys.sessions.finalizer import Finalizer
from lfusys.sessions.renewal import kept_renewed
from lfusys.storage.objects import MalformedEvent, chunks_in_event
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
                    taken = await self._take_slots(slots, stop)
                    messages = await self._receive(taken, stop)
                    for _ in range(taken - len(messages)):
                        slots.release()
                    for message in messages:
                        handler = group.create_task(self._handle(message, slots))
                        handlers.add(handler)
                        handler.add_done_callback(handlers.discard)
            finally:
                await self._drain(handlers)

    async def _take_slots(self, slots: asyncio.Semaphore, stop: asyncio.Event) -> int:
        """Wait for one free slot (or ``stop``), then take as many more as are free, up to a batch."""
        if not await _unless_stopped(slots.acquire(), stop):
            return 0
        taken = 1
        while taken < _MAX_BATCH and not slots.locked():
            await slots.acquire()
            taken += 1
        return taken

    async def _receive(self, batch: int, stop: asyncio.Event) -> list[QueueMessage]:
        if batch == 0:
            return []
        try:
            received = await _unless_stopped(self._queue.receive(batch, self._wait, self._visibility), stop)
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

    async def _handle(self, message: QueueMessage, slots: asyncio.Semaphore) -> None:
        try:
            async with kept_renewed(
                lambda: self._extend(message), every=self._visibility / 2, what="message visibility", id=message.id
            ):
                for event in chunks_in_event(message.body):
                    await self._finalizer.on_chunk_stored(event)
            await self._queue.delete(message.receipt)
        except MalformedEvent as exc:
            log.warning("malformed event left for the dead-letter queue", message_id=message.id, reason=str(exc))
            return
        except asyncio.CancelledError:
            # Shutting down: let another worker (or this one after a restart) take it right away.
            with contextlib.suppress(Exception):
                await self._queue.extend_visibility(message.receipt, 0)
            raise
        except Exception:
            # Never let one message end the worker: it comes back after its visibility timeout.
            log.exception("event handling failed; it will be retried", message_id=message.id)
        finally:
            slots.release()

    async def _extend(self, message: QueueMessage) -> bool:
        await self._queue.extend_visibility(message.receipt, self._visibility)
        return True


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """``work``'s result, or ``None`` if ``stop`` is set first (``work`` is then cancelled)."""
    working = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if working.done():
        return working.result()
    working.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await working
    return None
