"""The event worker: ordering, duplicates, poison messages, concurrency, visibility while busy, and shutdown.

Visibility timeouts are real time (the queue's own), so they are kept to a few tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, cast

import pytest

from lfusys.auth.records import User
from lfusys.services import Services
from lfusys.sessions import worker as worker_module
from lfusys.sessions.finalizer import Finalizer
from lfusys.sessions.records import UploadSession
from lfusys.sessions.worker import EventWorker
from lfusys.storage.objects import ChunkStored, object_created_event
from lfusys.storage.ports import DeadLetter, EventQueue, QueueDepth, QueueMessage
from tests.support import (
    completed,
    eventually,
    file_bytes,
    file_ids,
    random_bytes,
    stored_session,
    stored_upload,
    take_queued_events,
)

SHORT = timedelta(milliseconds=50)


@asynccontextmanager
async def running(worker: EventWorker) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


def make_worker(queue: EventQueue, finalizer: Any, concurrency: int = 4, visibility: timedelta = SHORT) -> EventWorker:
    return EventWorker(
        queue=queue,
        finalizer=cast(Finalizer, finalizer),
        concurrency=concurrency,
        visibility_timeout=visibility,
        wait_time=timedelta(milliseconds=50),
        grace=timedelta(milliseconds=100),
    )


class WatchedQueue:
    """The backend's queue, counting the messages the worker acknowledges (deletes)."""

    def __init__(self, queue: EventQueue) -> None:
        self.queue = queue
        self.deleted = 0
        self.deletions = 0

    async def send(self, body: str) -> None:
        await self.queue.send(body)

    async def receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[QueueMessage]:
        return await self.queue.receive(max_messages, wait_seconds, visibility_timeout)

    async def delete(self, *receipts: str) -> None:
        await self.queue.delete(*receipts)
        self.deleted += len(receipts)
        self.deletions += 1

    async def extend_visibility(self, receipt: str, seconds: float) -> None:
        await self.queue.extend_visibility(receipt, seconds)

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        return await self.queue.dead_letters(limit)

    async def redrive(self, ids: Sequence[str] | None) -> int:
        return await self.queue.redrive(ids)

    async def depth(self) -> QueueDepth:
        return await self.queue.depth()

    async def acknowledged(self, count: int) -> bool:
        return self.deleted >= count


async def left_on(queue: EventQueue, visibility: timedelta = SHORT) -> list[QueueMessage]:
    """Every message still on the queue, hidden ones included (their visibility timeout is waited out)."""
    return await queue.receive(10, visibility.total_seconds() * 2, 30)


async def dead(queue: EventQueue) -> list[DeadLetter]:
    return await queue.dead_letters(100)


async def upload_file_bytes(services: Services, upload_id: str) -> bytes:
    session = await stored_session(services, upload_id)
    assert session.file_id is not None
    return await file_bytes(services, session.file_id)


@pytest.mark.parametrize("order", ["in order", "reversed"])
async def test_chunk_events_in_any_order_make_the_file(services: Services, owner: User, order: str) -> None:
    data = random_bytes(4096 * 4 + 10)
    numbers = [1, 2, 3, 4, 5] if order == "in order" else [5, 4, 3, 2, 1]
    session = await stored_upload(services, owner, data, order=numbers)
    queue = services.backend.queue

    async with running(make_worker(queue, services.finalizer)):
        await eventually(lambda: completed(services, session.id))

    assert await left_on(queue) == []
    assert await upload_file_bytes(services, session.id) == data
    assert await dead(queue) == []


async def test_duplicated_events_make_exactly_one_file(services: Services, owner: User) -> None:
    data = random_bytes(4096 * 3)
    session = await stored_upload(services, owner, data)
    queue = services.backend.queue
    for body in await take_queued_events(services) * 3:
        await queue.send(body)

    async with running(make_worker(queue, services.finalizer)):
        await eventually(lambda: completed(services, session.id))

    assert await left_on(queue) == []
    assert len(await file_ids(services, owner)) == 1
    assert await upload_file_bytes(services, session.id) == data
    assert await dead(queue) == []


async def test_late_events_for_a_finished_session_are_acknowledged(services: Services, owner: User) -> None:
    data = random_bytes(4096 * 2)
    session = await stored_upload(services, owner, data)
    queue = services.backend.queue
    bodies = await take_queued_events(services)
    for body in bodies:
        await queue.send(body)

    watched = WatchedQueue(queue)

    async with running(make_worker(watched, services.finalizer)):
        await eventually(lambda: completed(services, session.id))
        for body in bodies:
            await queue.send(body)
        await eventually(lambda: watched.acknowledged(2 * len(bodies)))

    assert await left_on(queue) == []
    assert len(await file_ids(services, owner)) == 1
    assert await upload_file_bytes(services, session.id) == data
    assert await dead(queue) == []


async def test_test_events_foreign_keys_and_unknown_uploads_are_acknowledged(services: Services) -> None:
    queue = services.backend.queue
    await queue.send(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "lfusys"}))
    await queue.send(object_created_event("lfusys", "files/abc/part_000001", 10, 1))
    await queue.send(object_created_event("lfusys", "uploads/unknownupload/chunk_1", 10, 2))
    await queue.send(json.dumps({"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"object": {"key": "x"}}}]}))
    watched = WatchedQueue(queue)

    async with running(make_worker(watched, services.finalizer)):
        await eventually(lambda: watched.acknowledged(4))

    assert await left_on(queue) == []
    assert await dead(queue) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"Records": 5}',
        '{"Records": [{"s3": {}}]}',
        '{"Records": [{"eventName": "ObjectCreated:Put"}]}',
    ],
)
async def test_malformed_messages_end_in_the_dead_letters(services: Services, body: str) -> None:
    queue = services.backend.queue
    await queue.send(body)
    good = object_created_event("lfusys", "uploads/unknownupload/chunk_1", 10, 1)
    await queue.send(good)
    visibility = timedelta(milliseconds=20)

    watched = WatchedQueue(queue)

    async with running(make_worker(watched, services.finalizer, visibility=visibility)):
        await eventually(lambda: watched.acknowledged(1))
        await eventually(lambda: _dead_count_is(queue, 1))

    assert await left_on(queue, visibility) == []
    letters = await dead(queue)
    assert [letter.body for letter in letters] == [body]
    assert letters[0].receive_count == services.settings.queue.queue_max_receives


class RecordingFinalizer:
    """Stands in for the finalizer to observe how the worker schedules work: every recorded batch
    takes ``hold`` seconds (or until ``release`` is set)."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        self.running = 0
        self.most_at_once = 0
        self.batches = 0
        self.seen: list[ChunkStored] = []
        self.release = asyncio.Event()

    async def record(self, events: Sequence[ChunkStored]) -> list[UploadSession]:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            else:
                await self.release.wait()
            self.seen.extend(events)
            self.batches += 1
        finally:
            self.running -= 1
        return []

    async def finalize(self, upload_id: str, completing: Sequence[ChunkStored] = ()) -> bool:
        raise AssertionError("nothing is complete here")


async def send_chunk_events(queue: EventQueue, count: int) -> None:
    for n in range(1, count + 1):
        await queue.send(object_created_event("lfusys", f"uploads/upload{n}/chunk_1", 1, n))


async def test_events_are_handled_in_batches_and_acknowledged_together(services: Services) -> None:
    queue = WatchedQueue(services.backend.queue)
    await send_chunk_events(queue, 30)
    finalizer = RecordingFinalizer(hold=0.001)

    async with running(make_worker(queue, finalizer, concurrency=1)):
        await eventually(lambda: queue.acknowledged(30))

    assert sorted(event.upload_id for event in finalizer.seen) == sorted(f"upload{n}" for n in range(1, 31))
    assert finalizer.batches <= 10  # up to ten messages a batch, not one each
    assert queue.deletions == finalizer.batches  # one acknowledgement per batch
    assert await left_on(queue) == []


async def test_concurrency_bounds_the_batches_in_hand(services: Services) -> None:
    queue = services.backend.queue
    await send_chunk_events(queue, 40)
    finalizer = RecordingFinalizer(hold=0.05)

    async with running(make_worker(queue, finalizer, concurrency=3)):
        await eventually(lambda: _true(len(finalizer.seen) == 40))

    assert await left_on(queue) == []
    assert finalizer.most_at_once <= 3
    assert finalizer.most_at_once >= 2  # batches overlap: the bound is what stops more


async def test_a_long_handling_keeps_its_message_hidden_and_then_deletes_it(services: Services) -> None:
    queue = services.backend.queue
    await send_chunk_events(queue, 1)
    finalizer = RecordingFinalizer()

    async with running(make_worker(queue, finalizer, visibility=SHORT)):
        await eventually(lambda: _true(finalizer.running == 1))
        await asyncio.sleep(3 * SHORT.total_seconds())  # three visibility timeouts
        competing = await queue.receive(10, 0.02, 30)
        finalizer.release.set()
        await eventually(lambda: _true(len(finalizer.seen) == 1))

    assert competing == []
    assert await left_on(queue) == []
    assert len(finalizer.seen) == 1


async def test_stopping_returns_unfinished_messages_to_the_queue_at_once(services: Services) -> None:
    queue = services.backend.queue
    await send_chunk_events(queue, 2)
    finalizer = RecordingFinalizer()  # never released: the work cannot finish within the grace period

    async with running(make_worker(queue, finalizer, visibility=timedelta(seconds=30))):
        await eventually(lambda: _true(finalizer.running >= 1))

    returned = await queue.receive(10, 0, 30)
    assert sorted(m.receive_count for m in returned) == [2, 2]
    assert finalizer.seen == []


async def test_stopping_lets_in_flight_work_finish_within_the_grace_period(services: Services) -> None:
    queue = services.backend.queue
    await send_chunk_events(queue, 2)
    finalizer = RecordingFinalizer(hold=0.02)

    async with running(make_worker(queue, finalizer)):
        await eventually(lambda: _true(finalizer.running >= 1))

    assert len(finalizer.seen) == 2
    assert await left_on(queue) == []


async def test_a_failing_queue_does_not_stop_the_worker(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "_RETRY_DELAY", 0.001)
    queue = services.backend.queue
    await send_chunk_events(queue, 1)
    failures = 3

    class FlakyQueue(WatchedQueue):
        async def receive(
            self, max_messages: int, wait_seconds: float, visibility_timeout: float
        ) -> list[QueueMessage]:
            nonlocal failures
            if failures:
                failures -= 1
                raise ConnectionError("queue unavailable")
            return await super().receive(max_messages, wait_seconds, visibility_timeout)

    flaky = FlakyQueue(queue)
    finalizer = RecordingFinalizer(hold=0.001)
    async with running(make_worker(flaky, finalizer)):
        await eventually(lambda: flaky.acknowledged(1))

    assert failures == 0
    assert len(finalizer.seen) == 1
    assert await left_on(queue) == []


async def test_a_failing_handler_leaves_the_message_for_a_retry(
    services: Services, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(4096)
    session = await stored_upload(services, owner, data)
    calls = 0
    original = services.finalizer.record

    async def flaky(events: Sequence[ChunkStored]) -> list[UploadSession]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk hiccup")
        return await original(events)

    monkeypatch.setattr(services.finalizer, "record", flaky)

    async with running(make_worker(services.backend.queue, services.finalizer)):
        await eventually(lambda: completed(services, session.id))

    assert calls >= 2  # the failed first attempt, then the retry (a slow machine may redeliver once more)
    assert await upload_file_bytes(services, session.id) == data


async def test_the_message_that_completes_a_session_is_acknowledged_after_the_finalization(
    services: Services, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(4096 * 2)
    session = await stored_upload(services, owner, data)
    queue = WatchedQueue(services.backend.queue)
    finalize = services.finalizer.finalize
    acknowledged_when_finalizing: list[int] = []

    async def watched(upload_id: str, completing: Sequence[ChunkStored] = ()) -> bool:
        acknowledged_when_finalizing.append(queue.deleted)
        return await finalize(upload_id, completing)

    monkeypatch.setattr(services.finalizer, "finalize", watched)

    async with running(make_worker(queue, services.finalizer)):
        await eventually(lambda: completed(services, session.id))
        await eventually(lambda: queue.acknowledged(2))

    assert acknowledged_when_finalizing == [0]  # both events came in one batch, held until it finished
    assert await left_on(queue) == []


async def _true(value: bool) -> bool:
    return value


async def _dead_count_is(queue: EventQueue, count: int) -> bool:
    return len(await dead(queue)) == count


async def test_messages_a_receive_returns_as_the_worker_stops_are_handled_not_dropped(services: Services) -> None:
    # A receive may finish with messages even though it was cancelled: asyncio.wait_for on Python 3.11
    # returns the result when it arrives together with the cancellation. Those messages are hidden for
    # their visibility timeout: the worker must handle them (or hand them back), never drop them.
    queue = services.backend.queue
    await send_chunk_events(queue, 1)
    receiving = asyncio.Event()

    class LateQueue(WatchedQueue):
        async def receive(
            self, max_messages: int, wait_seconds: float, visibility_timeout: float
        ) -> list[QueueMessage]:
            receiving.set()
            with contextlib.suppress(asyncio.CancelledError):  # too late to be cancelled: the messages are taken
                await asyncio.sleep(3600)
            return await super().receive(max_messages, 0, visibility_timeout)

    late = LateQueue(queue)
    finalizer = RecordingFinalizer(hold=0.001)
    async with running(make_worker(late, finalizer, visibility=timedelta(seconds=30))):
        await receiving.wait()

    assert [event.upload_id for event in finalizer.seen] == ["upload1"]
    assert late.deleted == 1
    assert await queue.receive(10, 0, 30) == []
