"""The janitor: expiry, cleanup of finished sessions, lost events and dead finalizers, one item at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import structlog

from lfusys.auth.records import User
from lfusys.errors import Gone
from lfusys.services import Services
from lfusys.sessions.finalizer import file_id_for
from lfusys.sessions.records import UploadStatus
from lfusys.storage.objects import ChunkStored
from tests.support import (
    FakeClock,
    body_of,
    file_bytes,
    lose_queued_events,
    opened_services,
    pass_expiry,
    random_bytes,
    record_all,
    register_owner,
    sha256_hex,
    status_of,
    stored_upload,
)
from tests.unit.sessions.conftest import BACKEND

LEASE = timedelta(seconds=30)


@pytest.fixture
async def services(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Services]:
    """Sessions count as stalled at once."""
    async with opened_services(tmp_path, clock, BACKEND, stalled_after=timedelta(0), finalize_lease=LEASE) as opened:
        yield opened


async def test_an_overdue_session_expires_and_loses_its_chunks(
    services: Services, owner: User, clock: FakeClock
) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[1, 2])
    pass_expiry(services, clock)

    report = await services.janitor.sweep()

    assert report.expired == 1
    assert await status_of(services, session.id) is UploadStatus.EXPIRED
    assert await services.backend.blobs.list_chunks(session.id) == []
    assert await services.backend.uploads.usage(owner.id) == 0
    with pytest.raises(Gone):
        await services.ingress.receive(
            owner, session.id, 3, sha256=sha256_hex(b"x"), content_length=1, body=body_of(b"x")
        )


async def test_a_session_not_yet_due_is_not_expired(services: Services, owner: User, clock: FakeClock) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[1])
    clock.advance(services.settings.uploads.upload_ttl - timedelta(seconds=1))

    report = await services.janitor.sweep()

    assert report.expired == 0
    assert (await status_of(services, session.id)).accepts_chunks
    assert await services.backend.blobs.list_chunks(session.id) == [1]


async def test_a_cancelled_session_loses_its_chunks_once(services: Services, owner: User) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[2])
    await services.sessions.cancel(owner, session.id)

    first = await services.janitor.sweep()
    second = await services.janitor.sweep()

    assert (first.cleaned, second.cleaned) == (1, 0)
    assert await services.backend.blobs.list_chunks(session.id) == []
    assert await status_of(services, session.id) is UploadStatus.CANCELLED


async def test_chunks_whose_events_were_lost_are_recorded_and_the_upload_finishes(
    services: Services, owner: User
) -> None:
    data = random_bytes(4096 * 3)
    session = await stored_upload(services, owner, data)
    assert await lose_queued_events(services) == 3  # every storage event lost
    await services.finalizer.on_chunks_stored([ChunkStored(session.id, 2)])  # one arrived

    report = await services.janitor.sweep()

    assert report.chunks_recovered == 2
    assert await status_of(services, session.id) is UploadStatus.COMPLETED
    assert await file_bytes(services, file_id_for(session.id)) == data


async def test_lost_events_of_more_chunks_than_one_page_are_all_recovered(tmp_path: Path, clock: FakeClock) -> None:
    # More chunk records than one page of the store's listing (1,000): recovery must read them all.
    async with opened_services(
        tmp_path, clock, BACKEND, stalled_after=timedelta(0), min_chunk_size=1, default_chunk_size=1
    ) as services:
        owner = await register_owner(services)
        data = random_bytes(1500)
        session = await stored_upload(services, owner, data)
        assert session.total_chunks == 1500
        assert await lose_queued_events(services) == 1500

        report = await services.janitor.sweep()

        assert report.chunks_recovered == 1500
        assert await status_of(services, session.id) is UploadStatus.COMPLETED
        assert await file_bytes(services, file_id_for(session.id)) == data


async def test_a_full_session_that_never_finalized_is_redriven(
    services: Services, owner: User, clock: FakeClock
) -> None:
    data = random_bytes(4096 * 2)
    session = await stored_upload(services, owner, data)
    await record_all(services, clock, session)

    report = await services.janitor.sweep()

    assert report.redriven == 1
    assert await status_of(services, session.id) is UploadStatus.COMPLETED
    assert await file_bytes(services, file_id_for(session.id)) == data


async def test_a_session_whose_finalizer_died_is_taken_over_when_the_lease_lapses(
    services: Services, owner: User, clock: FakeClock
) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 2))
    await record_all(services, clock, session)
    assert await services.backend.uploads.claim_finalize(session.id, "dead-worker", clock(), clock() + LEASE)

    too_early = await services.janitor.sweep()
    clock.advance(LEASE + timedelta(milliseconds=1))
    after_lapse = await services.janitor.sweep()

    assert (too_early.redriven, after_lapse.redriven) == (0, 1)
    assert await status_of(services, session.id) is UploadStatus.COMPLETED


async def test_an_idle_session_is_only_pushed_on_after_stalled_after(tmp_path: Path, clock: FakeClock) -> None:
    stalled_after = timedelta(minutes=5)
    async with opened_services(tmp_path, clock, BACKEND, stalled_after=stalled_after) as services:
        owner = await register_owner(services)
        session = await stored_upload(services, owner, random_bytes(4096 * 2))
        await lose_queued_events(services)

        clock.advance(stalled_after - timedelta(seconds=1))
        early = await services.janitor.sweep()
        clock.advance(timedelta(seconds=2))
        late = await services.janitor.sweep()

        assert (early.chunks_recovered, late.chunks_recovered) == (0, 2)
        assert await status_of(services, session.id) is UploadStatus.COMPLETED


async def test_a_partial_idle_session_is_left_alone(services: Services, owner: User) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[1])
    await services.finalizer.on_chunks_stored([ChunkStored(session.id, 1)])

    report = await services.janitor.sweep()

    assert (report.redriven, report.chunks_recovered, report.expired) == (0, 0, 0)
    assert await status_of(services, session.id) is UploadStatus.IN_PROGRESS
    assert await services.backend.blobs.list_chunks(session.id) == [1]


# --- one bad item never stops a sweep ---------------------------------------------------------


async def test_one_failing_session_is_logged_once_and_the_others_are_still_handled(
    services: Services, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = [await stored_upload(services, owner, random_bytes(4096), order=[1]) for _ in range(3)]
    for session in sessions:
        await services.sessions.cancel(owner, session.id)
    bad = sessions[1].id
    delete_upload = services.backend.blobs.delete_upload

    async def fails_for_one(upload_id: str) -> None:
        if upload_id == bad:
            raise PermissionError("permission denied")
        await delete_upload(upload_id)

    monkeypatch.setattr(services.backend.blobs, "delete_upload", fails_for_one)

    with structlog.testing.capture_logs() as logged:
        first = await services.janitor.sweep()
        second = await services.janitor.sweep()

    assert first.failures >= 1
    assert second.failures >= 1
    assert [await services.backend.blobs.list_chunks(s.id) for s in sessions] == [[], [1], []]
    errors = [line for line in logged if line["log_level"] == "error" and line.get("item") == bad]
    assert len(errors) == 1  # the same failure again is not logged again at error level
    monkeypatch.setattr(services.backend.blobs, "delete_upload", delete_upload)
    await services.janitor.sweep()
    assert await services.backend.blobs.list_chunks(bad) == []
