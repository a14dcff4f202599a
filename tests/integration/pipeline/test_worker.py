"""The event worker over the real SQLite queue: ordering, duplicates, poison messages, concurrency,
visibility while busy, and shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, cast

import pytest

from lfusys.services import Services
from lfusys.sessions import worker as worker_module
from lfusys.sessions.events import ChunkStored
from lfusys.sessions.finalizer import Finalizer
from lfusys.sessions.worker import EventWorker
from lfusys.storage.local.blobs import s3_object_created_event
from lfusys.storage.local.queue import LocalEventQueue
from lfusys.storage.ports import EventQueue, QueueMessage, User
from tests.integration.pipeline.conftest import completed, database, eventually, random_bytes, stored_upload

SHORT = timedelta(milliseconds=100)


def local_queue(services: Services) -> LocalEventQueue:
    return cast(LocalEventQueue, services.queue)


async def queued_bodies(services: Services) -> list[str]:
    rows = await database(services).fetch_all("SELECT body FROM event_queue ORDER BY id")
    return [row["body"] for row in rows]


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
        grace=timedelta(milliseconds=200),
    )


async def queue_empty(services: Services) -> bool:
    return await local_queue(services).pending_count() == 0


async def file_bytes(services: Services, upload_id: str) -> bytes:
    session = await services.metadata.uploads.get(upload_id)
    assert session is not None
    assert session.file_id is not None
    return b"".join([block async for block in services.blobs.read_file(session.file_id, None)])


async def file_rows(services: Services) -> int:
    rows = await database(services).fetch_all("SELECT id FROM files")
    return len(rows)


@pytest.mark.parametrize("order", ["in order", "reversed"])
async def test_chunk_events_in_any_order_make_the_file(services: Services, owner: User, order: str) -> None:
    data = random_bytes(4096 * 4 + 10)
    numbers = [1, 2, 3, 4, 5] if order == "in order" else [5, 4, 3, 2, 1]
    session = await stored_upload(services, owner, data, order=numbers)

    async with running(services.worker):
        await eventually(lambda: completed(services, session.id))
        await eventually(lambda: queue_empty(services))

    assert await file_bytes(services, session.id) == data
    assert await local_queue(services).dead_letters() == []


async def test_duplicated_events_make_exactly_one_file(services: Services, owner: User) -> None:
    data = random_bytes(4096 * 3)
    session = await stored_upload(services, owner, data)
    for body in await queued_bodies(services) * 2:
        await local_queue(services).send(body)

    async with running(services.worker):
        await eventually(lambda: completed(services, session.id))
        await eventually(lambda: queue_empty(services))

    assert await file_rows(services) == 1
    assert await file_bytes(services, session.id) == data
    assert await local_queue(services).dead_letters() == []


async def test_late_events_for_a_finished_session_are_acknowledged(services: Services, owner: User) -> None:
    data = random_bytes(4096 * 2)
    session = await stored_upload(services, owner, data)
    bodies = await queued_bodies(services)
    async with running(services.worker):
        await eventually(lambda: completed(services, session.id))
        for body in bodies:
            await local_queue(services).send(body)
        await eventually(lambda: queue_empty(services))

    assert await file_rows(services) == 1
    assert await file_bytes(services, session.id) == data
    assert await local_queue(services).dead_letters() == []


async def test_test_events_foreign_keys_and_unknown_uploads_are_acknowledged(services: Services) -> None:
    queue = local_queue(services)
    await queue.send(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "lfusys"}))
    await queue.send(s3_object_created_event("lfusys", "files/abc/part_000001", 10, 1))
    await queue.send(s3_object_created_event("lfusys", "uploads/unknownupload/chunk_1", 10, 2))
    await queue.send(json.dumps({"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"object": {"key": "x"}}}]}))

    async with running(services.worker):
        await eventually(lambda: queue_empty(services))

    assert await queue.dead_letters() == []


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
async def test_malformed_messages_end_in_the_dead_letter_table(services: Services, body: str) -> None:
    queue = local_queue(services)
    await queue.send(body)
    good = s3_object_created_event("lfusys", "uploads/unknownupload/chunk_1", 10, 1)
    await queue.send(good)
    worker = make_worker(queue, services.finalizer, visibility=timedelta(milliseconds=20))

    async with running(worker):
        await eventually(lambda: queue_empty(services))

    assert [letter.body for letter in await queue.dead_letters()] == [body]
    assert (await queue.dead_letters())[0].receive_count == services.settings.queue_max_receives


class RecordingFinalizer:
    """Stands in for the finalizer to observe how the worker schedules work."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        self.running = 0
        self.most_at_once = 0
        self.seen: list[ChunkStored] = []
        self.release = asyncio.Event()

    async def on_chunk_stored(self, event: ChunkStored) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            else:
                await self.release.wait()
            self.seen.append(event)
        finally:
            self.running -= 1


async def send_chunk_events(queue: LocalEventQueue, count: int) -> None:
    for n in range(1, count + 1):
        await queue.send(s3_object_created_event("lfusys", f"uploads/upload{n}/chunk_1", 1, n))


async def test_concurrency_is_bounded_across_batches(services: Services) -> None:
    queue = local_queue(services)
    await send_chunk_events(queue, 12)
    finalizer = RecordingFinalizer(hold=0.05)
    worker = make_worker(queue, finalizer, concurrency=3, visibility=timedelta(seconds=30))

    async with running(worker):
        await eventually(lambda: queue_empty(services))

    assert len(finalizer.seen) == 12
    assert finalizer.most_at_once == 3


async def test_a_long_handling_keeps_its_message_hidden_and_then_deletes_it(services: Services) -> None:
    queue = local_queue(services)
    await send_chunk_events(queue, 1)
    finalizer = RecordingFinalizer()
    worker = make_worker(queue, finalizer, visibility=timedelta(milliseconds=400))

    async with running(worker):
        await eventually(lambda: _true(finalizer.running == 1))
        await asyncio.sleep(1.2)  # three visibility timeouts
        competing = await queue.receive(10, 0.05, 30)
        finalizer.release.set()
        await eventually(lambda: queue_empty(services))

    assert competing == []
    assert len(finalizer.seen) == 1


async def test_stopping_returns_unfinished_messages_to_the_queue_at_once(services: Services) -> None:
    queue = local_queue(services)
    await send_chunk_events(queue, 2)
    finalizer = RecordingFinalizer()  # never released: the work cannot finish within the grace period
    worker = make_worker(queue, finalizer, visibility=timedelta(seconds=30))

    async with running(worker):
        await eventually(lambda: _true(finalizer.running == 2))

    returned = await queue.receive(10, 0.05, 30)
    assert sorted(m.receive_count for m in returned) == [2, 2]
    assert finalizer.seen == []


async def test_stopping_lets_in_flight_work_finish_within_the_grace_period(services: Services) -> None:
    queue = local_queue(services)
    await send_chunk_events(queue, 2)
    finalizer = RecordingFinalizer(hold=0.05)
    worker = make_worker(queue, finalizer, visibility=timedelta(seconds=30))

    async with running(worker):
        await eventually(lambda: _true(finalizer.running == 2))

    assert len(finalizer.seen) == 2
    assert await queue.pending_count() == 0


async def test_a_failing_queue_does_not_stop_the_worker(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "_RETRY_DELAY", 0.01)
    queue = local_queue(services)
    await send_chunk_events(queue, 1)
    failures = 3

    class FlakyQueue:
        async def receive(
            self, max_messages: int, wait_seconds: float, visibility_timeout: float
        ) -> list[QueueMessage]:
            nonlocal failures
            if failures:
                failures -= 1
                raise ConnectionError("queue unavailable")
            return await queue.receive(max_messages, wait_seconds, visibility_timeout)

        async def delete(self, receipt: str) -> None:
            await queue.delete(receipt)

        async def extend_visibility(self, receipt: str, seconds: float) -> None:
            await queue.extend_visibility(receipt, seconds)

    finalizer = RecordingFinalizer(hold=0.01)
    async with running(make_worker(FlakyQueue(), finalizer)):
        await eventually(lambda: queue_empty(services))

    assert failures == 0
    assert len(finalizer.seen) == 1


async def test_a_failing_handler_leaves_the_message_for_a_retry(services: Services, owner: User) -> None:
    data = random_bytes(4096)
    session = await stored_upload(services, owner, data)
    calls = 0
    original = services.finalizer.on_chunk_stored

    async def flaky(event: ChunkStored) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk hiccup")
        await original(event)

    worker = make_worker(services.queue, type("F", (), {"on_chunk_stored": staticmethod(flaky)})())

    async with running(worker):
        await eventually(lambda: completed(services, session.id))

    assert calls >= 2  # the failed first attempt, then the retry (a slow machine may redeliver once more)
    assert await file_bytes(services, session.id) == data


async def _true(value: bool) -> bool:
    return value
