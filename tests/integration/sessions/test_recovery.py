"""No upload is stranded: every session whose chunks are all stored finalizes, whatever happened to
its storage events, and a full session reaching its expiry is finalized rather than deleted.

The services run on each backend with their real worker and janitor, in real time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lfusys.auth.records import User
from lfusys.services import Services, background_work
from lfusys.sessions.finalizer import file_id_for
from lfusys.sessions.records import UploadSession, UploadStatus
from lfusys.storage.objects import ChunkStored, chunks_in_event
from tests.support import (
    FakeClock,
    body_of,
    chunks_of,
    completed,
    eventually,
    file_bytes,
    lose_queued_events,
    opened_services,
    random_bytes,
    register_owner,
    sha256_hex,
    stored_upload,
)
from tests.support import status_of as status

STALLED_AFTER = timedelta(seconds=1)


def recovery_services(
    data_dir: Path, clock: FakeClock, backend_name: str, **overrides: Any
) -> contextlib.AbstractAsyncContextManager[Services]:
    return opened_services(
        data_dir,
        clock,
        backend_name,
        **{
            "stalled_after": STALLED_AFTER,
            "janitor_interval": timedelta(milliseconds=100),
            "queue_wait_time": timedelta(milliseconds=100),
            **overrides,
        },
    )


@pytest.fixture
async def services(data_dir: Path, clock: FakeClock, backend_name: str) -> AsyncIterator[Services]:
    async with recovery_services(data_dir, clock, backend_name) as opened:
        yield opened


@pytest.fixture
async def owner(services: Services) -> User:
    return await register_owner(services)


async def test_a_one_chunk_upload_whose_events_are_all_lost_completes_within_stalled_after(
    services: Services, owner: User
) -> None:
    data = random_bytes(3000)
    session = await stored_upload(services, owner, data)
    stored_at = asyncio.get_running_loop().time()
    assert await lose_queued_events(services) == 1
    assert await status(services, session.id) is UploadStatus.PENDING  # nothing recorded it

    async with background_work(services):
        await eventually(lambda: completed(services, session.id), within=STALLED_AFTER.total_seconds() + 5)
    took = asyncio.get_running_loop().time() - stored_at

    assert took >= STALLED_AFTER.total_seconds()  # the janitor waited until the session was idle
    assert await file_bytes(services, file_id_for(session.id)) == data


async def test_a_multi_chunk_upload_with_one_event_dead_lettered_completes(
    data_dir: Path, clock: FakeClock, backend_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with recovery_services(
        data_dir, clock, backend_name, queue_max_receives=1, queue_visibility_timeout=timedelta(seconds=1)
    ) as services:
        owner = await register_owner(services)
        data = random_bytes(4096 * 3)
        session = await stored_upload(services, owner, data)
        record = services.finalizer.record
        poisoned: list[ChunkStored] = []

        async def chunk_2_fails(events: Sequence[ChunkStored]) -> list[UploadSession]:
            if (session.id, 2) in {event.chunk for event in events} and not poisoned:
                poisoned.append(ChunkStored(session.id, 2))
                await record([event for event in events if event.n != 2])  # the others get through
                raise RuntimeError("the database was locked")
            return await record(events)

        monkeypatch.setattr(services.finalizer, "record", chunk_2_fails)
        async with background_work(services):
            await eventually(lambda: completed(services, session.id), within=15)

        dead = [letter.body for letter in await services.backend.queue.dead_letters(10)]
        assert any((session.id, 2) in {event.chunk for event in chunks_in_event(body)} for body in dead)
        assert poisoned == [ChunkStored(session.id, 2)]
        assert await file_bytes(services, file_id_for(session.id)) == data


async def test_a_full_session_reaching_its_expiry_is_finalized_not_deleted(
    data_dir: Path, clock: FakeClock, backend_name: str
) -> None:
    # Recovery of idle sessions would come too late: only the expiry sweep looks at this one.
    async with recovery_services(data_dir, clock, backend_name, stalled_after=timedelta(hours=48)) as services:
        owner = await register_owner(services)
        data = random_bytes(4096 * 2 + 10)
        session = await stored_upload(services, owner, data)
        await lose_queued_events(services)

        clock.advance(services.settings.uploads.upload_ttl + timedelta(seconds=1))
        report = await services.janitor.sweep()

        assert (report.finalized_at_expiry, report.expired, report.chunks_recovered) == (1, 0, 3)
        assert await status(services, session.id) is UploadStatus.COMPLETED
        assert await file_bytes(services, file_id_for(session.id)) == data


async def test_a_partial_session_reaching_its_expiry_is_expired_and_loses_its_chunks(
    services: Services, owner: User, clock: FakeClock
) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[1, 3])

    clock.advance(timedelta(hours=25))
    report = await services.janitor.sweep()

    assert (report.expired, report.finalized_at_expiry) == (1, 0)
    assert await status(services, session.id) is UploadStatus.EXPIRED
    assert await services.backend.blobs.list_chunks(session.id) == []


async def test_resending_a_stored_chunk_makes_good_its_lost_event(services: Services, owner: User) -> None:
    data = random_bytes(4096 + 5)
    session = await stored_upload(services, owner, data)
    await lose_queued_events(services)
    chunk = chunks_of(data, session.chunk_size)[1]

    receipt = await services.ingress.receive(
        owner, session.id, 2, sha256=sha256_hex(chunk), content_length=len(chunk), body=body_of(chunk)
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(services.worker.run(stop))
    try:
        # Only the worker runs, no janitor: the resend's own event records chunk 2; chunk 1's event
        # is still lost, so the session waits until chunk 1 is sent again too.
        await eventually(lambda: recorded(services, session.id, 1))
        assert await status(services, session.id) is UploadStatus.IN_PROGRESS
        first = chunks_of(data, session.chunk_size)[0]
        await services.ingress.receive(
            owner, session.id, 1, sha256=sha256_hex(first), content_length=len(first), body=body_of(first)
        )
        await eventually(lambda: completed(services, session.id))
    finally:
        stop.set()
        await worker

    assert receipt.already_stored
    assert await file_bytes(services, file_id_for(session.id)) == data


async def recorded(services: Services, upload_id: str, count: int) -> bool:
    session = await services.backend.uploads.get(upload_id)
    return session is not None and session.recorded_chunks == count
