"""The janitor: expiry, cleanup of finished sessions, orphans, lost events and dead finalizers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from lfusys.app import open_services
from lfusys.errors import Gone
from lfusys.keys import load_or_create_keys
from lfusys.services import Services
from lfusys.sessions.events import ChunkStored
from lfusys.sessions.finalizer import file_id_for
from lfusys.storage.local.database import db_time
from lfusys.storage.ports import UploadStatus, User
from tests.integration.pipeline.conftest import PIPELINE_SETTINGS, body_of, database, random_bytes, stored_upload
from tests.support import make_settings, sha256_hex


@pytest.fixture
async def services(data_dir: Path) -> AsyncIterator[Services]:
    """Sessions count as stalled at once, and leases are short."""
    settings = make_settings(
        data_dir, **{**PIPELINE_SETTINGS, "stalled_after": timedelta(0), "finalize_lease": timedelta(seconds=1)}
    )
    async with open_services(settings, load_or_create_keys(settings)) as opened:
        yield opened


async def status(services: Services, upload_id: str) -> UploadStatus:
    session = await services.metadata.uploads.get(upload_id)
    assert session is not None
    return session.status


async def test_an_overdue_session_expires_and_loses_its_chunks(services: Services, owner: User) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[1, 2])
    past = db_time(datetime.now(UTC) - timedelta(seconds=1))
    await database(services).execute("UPDATE uploads SET expires_at = ? WHERE id = ?", (past, session.id))

    report = await services.janitor.sweep()

    assert report.expired == 1
    assert await status(services, session.id) is UploadStatus.EXPIRED
    assert await services.blobs.list_chunks(session.id) == []
    with pytest.raises(Gone):
        await services.ingress.receive(
            owner, session.id, 3, sha256=sha256_hex(b"x"), content_length=1, body=body_of(b"x")
        )


async def test_a_cancelled_session_loses_its_chunks_once(services: Services, owner: User) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[2])
    await services.sessions.cancel(owner, session.id)

    first = await services.janitor.sweep()
    second = await services.janitor.sweep()

    assert (first.cleaned, second.cleaned) == (1, 0)
    assert await services.blobs.list_chunks(session.id) == []
    assert await status(services, session.id) is UploadStatus.CANCELLED


async def test_chunk_folders_without_a_live_session_are_removed(services: Services, owner: User) -> None:
    live = await stored_upload(services, owner, random_bytes(4096 * 2), order=[1])
    late = await stored_upload(services, owner, random_bytes(4096 * 2), order=[1])
    await services.sessions.cancel(owner, late.id)
    await services.janitor.sweep()  # cleans the cancelled session
    # A chunk that was still streaming when the session was cancelled lands afterwards,
    # and one arrives for an upload that does not exist.
    await services.blobs.put_chunk(late.id, 2, body_of(b"y"), 1, sha256_hex(b"y"))
    await services.blobs.put_chunk("nosuchupload", 1, body_of(b"x"), 1, sha256_hex(b"x"))

    report = await services.janitor.sweep()

    assert report.orphans_removed == 2
    assert await services.blobs.upload_prefixes() == [live.id]
    assert await services.blobs.list_chunks(live.id) == [1]


async def test_chunks_whose_events_were_lost_are_recorded_and_the_upload_finishes(
    services: Services, owner: User
) -> None:
    data = random_bytes(4096 * 3)
    session = await stored_upload(services, owner, data)
    await database(services).execute("DELETE FROM event_queue")  # every storage event lost
    await services.finalizer.on_chunk_stored(ChunkStored(session.id, 2))  # one arrived

    report = await services.janitor.sweep()

    assert report.chunks_recovered == 2
    assert await status(services, session.id) is UploadStatus.COMPLETED
    stored = b"".join([b async for b in services.blobs.read_file(file_id_for(session.id), None)])
    assert stored == data


async def test_a_full_session_that_never_finalized_is_redriven(services: Services, owner: User) -> None:
    data = random_bytes(4096 * 2)
    session = await stored_upload(services, owner, data)
    for n in (1, 2):
        await services.metadata.uploads.record_chunk(session.id, n, datetime.now(UTC))

    report = await services.janitor.sweep()

    assert report.redriven == 1
    assert await status(services, session.id) is UploadStatus.COMPLETED


async def test_a_session_whose_finalizer_died_is_taken_over_when_the_lease_lapses(
    services: Services, owner: User
) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 2))
    now = datetime.now(UTC)
    for n in (1, 2):
        await services.metadata.uploads.record_chunk(session.id, n, now)
    assert await services.metadata.uploads.claim_finalize(session.id, "dead-worker", now, now + timedelta(seconds=1))

    too_early = await services.janitor.sweep()
    await asyncio.sleep(1.1)
    after_lapse = await services.janitor.sweep()

    assert (too_early.redriven, after_lapse.redriven) == (0, 1)
    assert await status(services, session.id) is UploadStatus.COMPLETED


async def test_a_partial_idle_session_is_left_alone(services: Services, owner: User) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[1])
    await services.finalizer.on_chunk_stored(ChunkStored(session.id, 1))

    report = await services.janitor.sweep()

    assert (report.redriven, report.chunks_recovered, report.expired) == (0, 0, 0)
    assert await status(services, session.id) is UploadStatus.IN_PROGRESS
    assert await services.blobs.list_chunks(session.id) == [1]


# --- one bad item never stops a sweep ---------------------------------------------------------


async def test_stray_entries_under_the_data_directory_do_not_stop_a_sweep(
    services: Services, owner: User, data_dir: Path
) -> None:
    uploads_dir = data_dir / "blobs" / "uploads"
    (uploads_dir / "lost+found").mkdir()
    (uploads_dir / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    cancelled = await stored_upload(services, owner, random_bytes(4096 * 2), order=[1])
    await services.sessions.cancel(owner, cancelled.id)

    report = await services.janitor.sweep()

    assert report.failures == 0
    assert report.cleaned == 1
    assert await services.blobs.list_chunks(cancelled.id) == []
    assert (uploads_dir / "lost+found").is_dir()  # not ours: left alone
    assert (uploads_dir / ".DS_Store").is_file()


async def test_one_failing_session_is_logged_once_and_the_others_are_still_handled(
    services: Services, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = [await stored_upload(services, owner, random_bytes(4096), order=[1]) for _ in range(3)]
    for session in sessions:
        await services.sessions.cancel(owner, session.id)
    bad = sessions[1].id
    delete_upload = services.blobs.delete_upload

    async def fails_for_one(upload_id: str) -> None:
        if upload_id == bad:
            raise PermissionError("permission denied")
        await delete_upload(upload_id)

    monkeypatch.setattr(services.blobs, "delete_upload", fails_for_one)

    with structlog.testing.capture_logs() as logged:
        first = await services.janitor.sweep()
        second = await services.janitor.sweep()

    assert first.failures >= 1
    assert second.failures >= 1
    assert [await services.blobs.list_chunks(s.id) for s in sessions] == [[], [1], []]
    errors = [line for line in logged if line["log_level"] == "error" and line.get("item") == bad]
    assert len(errors) == 1  # the same failure again is not logged again at error level
    monkeypatch.setattr(services.blobs, "delete_upload", delete_upload)
    await services.janitor.sweep()
    assert await services.blobs.list_chunks(bad) == []
