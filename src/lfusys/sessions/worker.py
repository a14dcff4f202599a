"""The event worker: long-polls the storage-event queue and hands chunk events to the finalizer.

At most ``concurrency`` messages are handled at once, across batches. A message is deleted only after
it was handled; while it is being handled its visibility is extended, so a long finalization is not
handed to a second worker. Malformed messages are left alone and end in the dead-letter store.
On stop, in-flight messages get ``grace`` seconds to finish; the rest are made visible again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from lfusys.sessions.events import MalformedEvent, chunks_in_event
from lfusys.sessions.finalizer import Finalizer
from lfusys.storage.ports import EventQueue, QueueMessage

log = structlog.get_logger(__name__)

_MAX_BATCH = 10  # the SQS limit for one receive
_RETRY_DELAY = 1.0


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
        self._in_flight: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()  # set whenever a handler finishes

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then drain (bounded by the grace period)."""
        try:
            while not stop.is_set():
                while len(self._in_flight) >= self._concurrency:
                    self._room.clear()
                    await self._room.wait()
                batch = min(self._concurrency - len(self._in_flight), _MAX_BATCH)
                try:
                    messages = await self._receive_unless_stopped(batch, stop)
                except Exception:
                    # The queue is down (or flaky): keep trying, never let the worker die.
                    log.exception("receiving events failed; retrying")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=_RETRY_DELAY)
                    continue
                for message in messages:
                    task = asyncio.create_task(self._handle(message))
                    self._in_flight.add(task)
                    task.add_done_callback(self._finished)
        finally:
            await self._drain()

    async def _receive_unless_stopped(self, batch: int, stop: asyncio.Event) -> list[QueueMessage]:
        receiving = asyncio.ensure_future(self._queue.receive(batch, self._wait, self._visibility))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if receiving.done():
            return receiving.result()
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiving
        return []

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._room.set()
        if not task.cancelled() and task.exception() is not None:  # pragma: no cover - _handle catches all
            log.error("event handler crashed", exc_info=task.exception())

    async def _drain(self) -> None:
        if not self._in_flight:
            return
        log.info("waiting for in-flight events", count=len(self._in_flight))
        _, unfinished = await asyncio.wait(set(self._in_flight), timeout=self._grace)
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished)

    async def _handle(self, message: QueueMessage) -> None:
        keep_hidden = asyncio.create_task(self._keep_hidden(message))
        try:
            events = chunks_in_event(message.body)
            for event in events:
                await self._finalizer.on_chunk_stored(event)
        except MalformedEvent as exc:
            log.warning("malformed event left for the dead-letter queue", message_id=message.id, reason=str(exc))
            return
        except asyncio.CancelledError:
            # Shutting down: let another worker (or this one after a restart) take it right away.
            with contextlib.suppress(Exception):
                await self._queue.extend_visibility(message.receipt, 0)
            raise
        except Exception:
            log.exception("event handling failed; it will be retried", message_id=message.id)
            return
        finally:
            keep_hidden.cancel()
        await self._queue.delete(message.receipt)

    async def _keep_hidden(self, message: QueueMessage) -> None:
        while True:
            await asyncio.sleep(self._visibility / 2)
            try:
                await self._queue.extend_visibility(message.receipt, self._visibility)
            except Exception:
                log.exception("could not extend message visibility", message_id=message.id)
