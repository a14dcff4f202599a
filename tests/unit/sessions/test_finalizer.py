"""The finalizer under races, crashes and retries: one winner, one file, the right bytes and checksum;
a lapsed lease is taken over; permanent problems fail the session with a reason, transient ones are
retried a bounded number of times."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from lfusys.auth.records import User
from lfusys.files.records import FileRecord
from lfusys.services import Services
from lfusys.sessions.finalizer import file_checksum, file_id_for
from lfusys.sessions.records import UploadStatus
from lfusys.storage.objects import ChunkStored
from lfusys.storage.ports import AssemblyLost, ChunkSpan, Part
from tests.support import (
    FakeClock,
    another_worker,
    body_of,
    chunks_of,
    file_bytes,
    file_ids,
    opened_services,
    random_bytes,
    record_all,
    register_owner,
    sha256_hex,
    stored_session,
    stored_upload,
)
from tests.unit.sessions.conftest import BACKEND


class Killed(BaseException):
    """Stands for the process dying at this exact point: nothing after it runs."""


async def test_the_file_keeps_name_type_size_owner_and_a_verifiable_checksum(
    services: Services, owner: User, clock: FakeClock
) -> None:
    data = random_bytes(4096 * 2 + 7)
    session = await stored_upload(services, owner, data)
    await record_all(services, clock, session)

    assert await services.finalizer.finalize(session.id)

    record = await services.backend.files.get(file_id_for(session.id))
    assert record is not None
    assert (record.name, record.type, record.size, record.owner_id) == (
        "data.bin",
        "application/octet-stream",
        len(data),
        owner.id,
    )
    digests = b"".join(hashlib.sha256(c).digest() for c in chunks_of(data, session.chunk_size))
    assert record.checksum == hashlib.sha256(digests).hexdigest()
    assert await file_bytes(services, record.id) == data
    assert await services.backend.blobs.list_chunks(session.id) == []


async def test_two_workers_racing_on_one_session_make_one_file(
    services: Services, owner: User, clock: FakeClock
) -> None:
    second = another_worker(services, clock)
    data = random_bytes(4096 * 6)
    session = await stored_upload(services, owner, data)
    await record_all(services, clock, session)

    results = await asyncio.gather(services.finalizer.finalize(session.id), second.finalizer.finalize(session.id))

    assert sorted(results) == [False, True]
    assert await file_ids(services, owner) == [file_id_for(session.id)]
    assert await file_bytes(second, file_id_for(session.id)) == data


async def test_two_workers_recording_the_last_chunk_at_once_make_one_file(
    services: Services, owner: User, clock: FakeClock
) -> None:
    second = another_worker(services, clock)
    data = random_bytes(4096 * 3)
    session = await stored_upload(services, owner, data)
    for n in (1, 2):
        await services.finalizer.on_chunks_stored([ChunkStored(session.id, n)])

    await asyncio.gather(
        services.finalizer.on_chunks_stored([ChunkStored(session.id, 3)]),
        second.finalizer.on_chunks_stored([ChunkStored(session.id, 3)]),
    )

    assert (await stored_session(services, session.id)).status is UploadStatus.COMPLETED
    assert await file_ids(services, owner) == [file_id_for(session.id)]
    assert await file_bytes(services, file_id_for(session.id)) == data


async def test_a_worker_killed_between_assembly_and_completion_is_taken_over_when_its_lease_lapses(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease = timedelta(seconds=30)
    async with opened_services(tmp_path, clock, BACKEND, finalize_lease=lease, stalled_after=timedelta(0)) as first:
        owner = await register_owner(first)
        data = random_bytes(4096 * 4 + 1)
        session = await stored_upload(first, owner, data)
        await record_all(first, clock, session)

        async def die(record: FileRecord) -> FileRecord:
            raise Killed

        monkeypatch.setattr(first.backend.files, "create_if_absent", die)
        with pytest.raises(Killed):
            await first.finalizer.finalize(session.id)
        monkeypatch.undo()
        assert (await stored_session(first, session.id)).status is UploadStatus.FINALIZING
        assert await first.backend.blobs.file_size(file_id_for(session.id)) == len(data)  # assembled, not recorded

        second = another_worker(first, clock)
        too_early = await second.janitor.sweep()
        clock.advance(lease + timedelta(seconds=1))  # the dead worker's lease lapses
        after_lapse = await second.janitor.sweep()

        assert (too_early.redriven, after_lapse.redriven) == (0, 1)
        done = await stored_session(second, session.id)
        assert done.status is UploadStatus.COMPLETED
        assert done.file_id == file_id_for(session.id)
        assert done.finalize_attempts == 2
        assert await file_ids(second, owner) == [file_id_for(session.id)]
        assert await file_bytes(second, file_id_for(session.id)) == data


async def test_a_worker_holding_a_live_lease_is_not_taken_over(
    services: Services, owner: User, clock: FakeClock
) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 2))
    await record_all(services, clock, session)
    lease = services.settings.queue.finalize_lease
    assert await services.backend.uploads.claim_finalize(session.id, "busy-worker", clock(), clock() + lease)

    clock.advance(lease - timedelta(seconds=1))
    assert not await services.finalizer.finalize(session.id)
    clock.advance(timedelta(seconds=2))
    assert await services.finalizer.finalize(session.id)

    assert (await stored_session(services, session.id)).status is UploadStatus.COMPLETED


async def test_a_chunk_whose_hash_was_never_saved_is_hashed_from_storage(
    services: Services, owner: User, clock: FakeClock
) -> None:
    data = random_bytes(4096 * 3)
    chunks = chunks_of(data, 4096)
    session = await stored_upload(services, owner, data, order=[1, 3])
    # Chunk 2's bytes are stored, but the process died before its hash was saved.
    await services.backend.blobs.put_chunk(session.id, 2, body_of(chunks[1]), len(chunks[1]), sha256_hex(chunks[1]))
    assert [chunk.sha256 is None for chunk in await services.backend.uploads.list_chunks(session.id)] == [False, False]
    await record_all(services, clock, session)

    assert await services.finalizer.finalize(session.id)

    record = await services.backend.files.get(file_id_for(session.id))
    assert record is not None
    assert record.checksum == file_checksum([sha256_hex(c) for c in chunks])
    assert await file_bytes(services, record.id) == data


async def test_an_incomplete_session_is_not_finalized(services: Services, owner: User) -> None:
    data = random_bytes(4096 * 3)
    session = await stored_upload(services, owner, data, order=[1, 3])
    await services.finalizer.on_chunks_stored([ChunkStored(session.id, 1)])
    await services.finalizer.on_chunks_stored([ChunkStored(session.id, 3)])

    assert not await services.finalizer.finalize(session.id)
    stored = await stored_session(services, session.id)
    assert (stored.status, stored.recorded_chunks) == (UploadStatus.IN_PROGRESS, 2)
    assert await file_ids(services, owner) == []


async def test_events_for_an_unknown_upload_are_dropped(services: Services, owner: User) -> None:
    await services.finalizer.on_chunks_stored([ChunkStored("nosuchupload", 1)])

    assert await services.backend.uploads.get("nosuchupload") is None
    assert await file_ids(services, owner) == []


# --- the failure edge ----------------------------------------------------------------------


async def failure(services: Services, upload_id: str) -> tuple[UploadStatus, str | None]:
    session = await stored_session(services, upload_id)
    return session.status, session.failure_reason


async def test_a_missing_chunk_fails_the_session_with_the_reason(
    services: Services, owner: User, clock: FakeClock
) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3))
    await services.backend.blobs.delete_chunk(session.id, 2)
    await record_all(services, clock, session)

    assert not await services.finalizer.finalize(session.id)

    assert await failure(services, session.id) == (UploadStatus.FAILED, "chunk 2 is missing")
    assert await file_ids(services, owner) == []
    assert not await services.finalizer.finalize(session.id)  # failed is final


async def test_a_missing_chunk_whose_hash_is_unknown_fails_the_session(
    services: Services, owner: User, clock: FakeClock
) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[1, 3])
    await record_all(services, clock, session)  # an event for chunk 2 with no bytes

    assert not await services.finalizer.finalize(session.id)

    assert await failure(services, session.id) == (UploadStatus.FAILED, "chunk 2 is missing")


async def test_a_chunk_of_the_wrong_size_fails_the_session_with_the_reason(
    services: Services, owner: User, clock: FakeClock
) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[1, 3])
    short = random_bytes(4000)
    await services.backend.blobs.put_chunk(session.id, 2, body_of(short), len(short), sha256_hex(short))
    await record_all(services, clock, session)

    assert not await services.finalizer.finalize(session.id)

    assert await failure(services, session.id) == (UploadStatus.FAILED, "chunk 2 has 4000 bytes, not 4096")
    assert await file_ids(services, owner) == []


async def test_a_failed_session_releases_its_quota_and_its_leftovers_are_cleaned(
    services: Services, owner: User, clock: FakeClock
) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3))
    await services.backend.blobs.delete_chunk(session.id, 3)
    await record_all(services, clock, session)
    assert await services.backend.uploads.usage(owner.id) == 4096 * 3

    await services.finalizer.finalize(session.id)
    await services.janitor.sweep()

    assert await services.backend.uploads.usage(owner.id) == 0
    assert await services.backend.blobs.list_chunks(session.id) == []
    assert await services.backend.blobs.file_size(file_id_for(session.id)) is None
    assert (await stored_session(services, session.id)).status is UploadStatus.FAILED
    assert await services.backend.uploads.needing_cleanup(10) == []


async def test_transient_errors_are_retried_a_bounded_number_of_times_then_the_session_fails(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with opened_services(tmp_path, clock, BACKEND, finalize_max_attempts=3) as services:
        owner = await register_owner(services)
        session = await stored_upload(services, owner, random_bytes(4096 * 2))
        await record_all(services, clock, session)
        attempts = 0

        async def flaky(*args: object) -> list[Part]:
            nonlocal attempts
            attempts += 1
            raise OSError("input/output error")

        monkeypatch.setattr(services.backend.blobs, "copy_parts", flaky)
        for _ in range(2):
            with pytest.raises(OSError, match="input/output error"):
                await services.finalizer.finalize(session.id)
            # The lease was let go: a retry may start at once.
            assert await failure(services, session.id) == (UploadStatus.FINALIZING, None)
        assert not await services.finalizer.finalize(session.id)

        assert attempts == 3
        assert await failure(services, session.id) == (
            UploadStatus.FAILED,
            "the file could not be assembled after 3 attempts",
        )
        assert await services.backend.uploads.usage(owner.id) == 0


async def test_a_transient_error_then_success_completes(
    services: Services, owner: User, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(4096 * 2)
    session = await stored_upload(services, owner, data)
    await record_all(services, clock, session)
    copy_parts = services.backend.blobs.copy_parts
    calls = 0

    async def once_flaky(file_id: str, assembly_id: str, upload_id: str, chunks: list[ChunkSpan]) -> list[Part]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("input/output error")
        return await copy_parts(file_id, assembly_id, upload_id, chunks)

    monkeypatch.setattr(services.backend.blobs, "copy_parts", once_flaky)
    with pytest.raises(OSError, match="input/output error"):
        await services.finalizer.finalize(session.id)

    assert await services.finalizer.finalize(session.id)
    assert await file_bytes(services, file_id_for(session.id)) == data


async def test_a_retry_goes_on_with_the_assembly_and_parts_an_earlier_attempt_made(
    services: Services, owner: User, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(4096 * 3 + 5)
    session = await stored_upload(services, owner, data)
    await record_all(services, clock, session)
    blobs = services.backend.blobs
    start_assembly, copy_parts, complete_assembly = blobs.start_assembly, blobs.copy_parts, blobs.complete_assembly
    started: list[str] = []
    copied: list[int] = []
    completions = 0

    async def counted_start(file_id: str) -> str:
        started.append(await start_assembly(file_id))
        return started[-1]

    async def counted_copy(file_id: str, assembly_id: str, upload_id: str, chunks: list[ChunkSpan]) -> list[Part]:
        copied.extend(chunk.n for chunk in chunks)
        return await copy_parts(file_id, assembly_id, upload_id, chunks)

    async def fails_once(file_id: str, assembly_id: str, parts: list[Part]) -> int:
        nonlocal completions
        completions += 1
        if completions == 1:
            raise OSError("connection reset")
        return await complete_assembly(file_id, assembly_id, parts)

    monkeypatch.setattr(blobs, "start_assembly", counted_start)
    monkeypatch.setattr(blobs, "copy_parts", counted_copy)
    monkeypatch.setattr(blobs, "complete_assembly", fails_once)
    with pytest.raises(OSError, match="connection reset"):
        await services.finalizer.finalize(session.id)
    kept = await stored_session(services, session.id)
    assert kept.assembly_id == started[0]
    assert [chunk.part_etag is not None for chunk in await services.backend.uploads.list_chunks(session.id)] == [
        True
    ] * 4

    assert await another_worker(services, clock).finalizer.finalize(session.id)

    assert len(started) == 1  # the same assembly, continued
    assert copied == [1, 2, 3, 4]  # no part copied twice
    assert await file_bytes(services, file_id_for(session.id)) == data


async def test_a_lost_assembly_is_forgotten_and_the_next_attempt_starts_anew(
    services: Services, owner: User, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(4096 * 2)
    session = await stored_upload(services, owner, data)
    await record_all(services, clock, session)
    blobs = services.backend.blobs
    complete_assembly = blobs.complete_assembly
    completions = 0

    async def lost_once(file_id: str, assembly_id: str, parts: list[Part]) -> int:
        nonlocal completions
        completions += 1
        if completions == 1:
            await blobs.abort_assembly(file_id, assembly_id)  # aborted or expired behind our back
            raise AssemblyLost(assembly_id)
        return await complete_assembly(file_id, assembly_id, parts)

    monkeypatch.setattr(blobs, "complete_assembly", lost_once)
    with pytest.raises(AssemblyLost):
        await services.finalizer.finalize(session.id)
    forgotten = await stored_session(services, session.id)
    assert forgotten.assembly_id is None
    assert [chunk.part_etag for chunk in await services.backend.uploads.list_chunks(session.id)] == [None, None]

    assert await services.finalizer.finalize(session.id)
    assert await file_bytes(services, file_id_for(session.id)) == data


def test_file_ids_are_derived_from_upload_ids() -> None:
    assert file_id_for("abc") == file_id_for("abc")
    assert file_id_for("abc") != file_id_for("abd")
    assert len(file_id_for("abc")) == 32
