"""The finalizer under races and crashes: one winner, one file, the right bytes and checksum."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from lfusys.app import background_work, open_services
from lfusys.keys import load_or_create_keys
from lfusys.services import Services
from lfusys.sessions.events import ChunkStored
from lfusys.sessions.finalizer import file_checksum, file_id_for
from lfusys.storage.ports import FileRecord, UploadStatus, User
from tests.integration.pipeline.conftest import (
    PIPELINE_SETTINGS,
    body_of,
    completed,
    database,
    eventually,
    random_bytes,
    stored_upload,
)
from tests.support import FakeClock, chunks_of, make_settings, sha256_hex


class Killed(BaseException):
    """Stands for the process dying at this exact point: nothing after it runs."""


@pytest.fixture
async def second_process(data_dir: Path) -> AsyncIterator[Services]:
    """Another worker over the same data directory, with its own database connection."""
    settings = make_settings(data_dir, **PIPELINE_SETTINGS)
    async with open_services(settings, load_or_create_keys(settings)) as other:
        yield other


async def record_all(services: Services, upload_id: str, total: int) -> None:
    for n in range(1, total + 1):
        await services.metadata.uploads.record_chunk(upload_id, n, services.finalizer._clock())


async def read_file(services: Services, file_id: str) -> bytes:
    return b"".join([block async for block in services.blobs.read_file(file_id, None)])


async def file_ids(services: Services) -> list[str]:
    return [row["id"] for row in await database(services).fetch_all("SELECT id FROM files")]


async def test_the_file_keeps_name_type_size_owner_and_a_verifiable_checksum(services: Services, owner: User) -> None:
    data = random_bytes(4096 * 2 + 7)
    session = await stored_upload(services, owner, data)
    await record_all(services, session.id, session.total_chunks)

    assert await services.finalizer.finalize(session.id)

    record = await services.metadata.files.get(file_id_for(session.id))
    assert record is not None
    assert (record.name, record.type, record.size, record.owner_id) == (
        "data.bin",
        "application/octet-stream",
        len(data),
        owner.id,
    )
    digests = b"".join(hashlib.sha256(c).digest() for c in chunks_of(data, session.chunk_size))
    assert record.checksum == hashlib.sha256(digests).hexdigest()
    assert await read_file(services, record.id) == data
    assert await services.blobs.list_chunks(session.id) == []


async def test_two_workers_racing_on_one_session_make_one_file(
    services: Services, second_process: Services, owner: User
) -> None:
    data = random_bytes(4096 * 6)
    session = await stored_upload(services, owner, data)
    await record_all(services, session.id, session.total_chunks)

    results = await asyncio.gather(
        services.finalizer.finalize(session.id), second_process.finalizer.finalize(session.id)
    )

    assert sorted(results) == [False, True]
    assert await file_ids(services) == [file_id_for(session.id)]
    assert await read_file(second_process, file_id_for(session.id)) == data


async def test_two_workers_recording_the_last_chunk_at_once_make_one_file(
    services: Services, second_process: Services, owner: User
) -> None:
    data = random_bytes(4096 * 3)
    session = await stored_upload(services, owner, data)
    for n in (1, 2):
        await services.finalizer.on_chunk_stored(ChunkStored(session.id, n))

    await asyncio.gather(
        services.finalizer.on_chunk_stored(ChunkStored(session.id, 3)),
        second_process.finalizer.on_chunk_stored(ChunkStored(session.id, 3)),
    )

    stored = await services.metadata.uploads.get(session.id)
    assert stored is not None
    assert stored.status is UploadStatus.COMPLETED
    assert await file_ids(services) == [file_id_for(session.id)]
    assert await read_file(services, file_id_for(session.id)) == data


async def test_a_worker_killed_between_assembly_and_completion_is_taken_over_after_restart(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        data_dir,
        **{
            **PIPELINE_SETTINGS,
            "finalize_lease": timedelta(seconds=1),
            "stalled_after": timedelta(0),
            "janitor_interval": timedelta(milliseconds=50),
        },
    )
    data = random_bytes(4096 * 4 + 1)
    keys = load_or_create_keys(settings)

    async with open_services(settings, keys) as first_run:
        owner = await first_run.auth.register(name="Ada", email="ada@example.com", password="correct horse battery")
        session = await stored_upload(first_run, owner, data)
        await record_all(first_run, session.id, session.total_chunks)

        async def die(record: FileRecord) -> FileRecord:
            raise Killed

        monkeypatch.setattr(first_run.metadata.files, "create_if_absent", die)
        with pytest.raises(Killed):
            await first_run.finalizer.finalize(session.id)
        stuck = await first_run.metadata.uploads.get(session.id)
        assert stuck is not None
        assert stuck.status is UploadStatus.FINALIZING
        assert await first_run.blobs.file_size(file_id_for(session.id)) == len(data)  # assembled, not recorded

    monkeypatch.undo()
    await asyncio.sleep(1.1)  # the dead worker's lease lapses
    async with open_services(settings, keys) as second_run, background_work(second_run):
        await eventually(lambda: completed(second_run, session.id))

        done = await second_run.metadata.uploads.get(session.id)
        assert done is not None
        assert done.status is UploadStatus.COMPLETED
        assert done.file_id == file_id_for(session.id)
        assert await file_ids(second_run) == [file_id_for(session.id)]
        assert await read_file(second_run, file_id_for(session.id)) == data


async def test_a_chunk_whose_hash_was_never_saved_is_hashed_from_storage(services: Services, owner: User) -> None:
    data = random_bytes(4096 * 3)
    session = await stored_upload(services, owner, data)
    await database(services).execute(
        "UPDATE upload_chunks SET sha256 = NULL WHERE upload_id = ? AND n = 2", (session.id,)
    )
    await record_all(services, session.id, session.total_chunks)

    assert await services.finalizer.finalize(session.id)

    record = await services.metadata.files.get(file_id_for(session.id))
    assert record is not None
    assert record.checksum == file_checksum([sha256_hex(c) for c in chunks_of(data, session.chunk_size)])


async def test_an_incomplete_session_is_not_finalized(services: Services, owner: User) -> None:
    data = random_bytes(4096 * 3)
    session = await stored_upload(services, owner, data, order=[1, 3])
    await services.finalizer.on_chunk_stored(ChunkStored(session.id, 1))
    await services.finalizer.on_chunk_stored(ChunkStored(session.id, 3))

    assert not await services.finalizer.finalize(session.id)
    stored = await services.metadata.uploads.get(session.id)
    assert stored is not None
    assert (stored.status, stored.recorded_chunks) == (UploadStatus.IN_PROGRESS, 2)
    assert await file_ids(services) == []


# --- the failure edge ----------------------------------------------------------------------


async def failure(services: Services, upload_id: str) -> tuple[UploadStatus, str | None]:
    session = await services.metadata.uploads.get(upload_id)
    assert session is not None
    return session.status, session.failure_reason


async def test_a_missing_chunk_fails_the_session_with_the_reason(services: Services, owner: User) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3))
    await services.blobs.delete_chunk(session.id, 2)
    await record_all(services, session.id, session.total_chunks)

    assert not await services.finalizer.finalize(session.id)

    assert await failure(services, session.id) == (UploadStatus.FAILED, "chunk 2 is missing")
    assert await file_ids(services) == []
    assert not await services.finalizer.finalize(session.id)  # failed is final


async def test_a_missing_chunk_whose_hash_is_unknown_fails_the_session(services: Services, owner: User) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[1, 3])
    await record_all(services, session.id, session.total_chunks)  # an event for chunk 2 with no bytes

    assert not await services.finalizer.finalize(session.id)

    assert await failure(services, session.id) == (UploadStatus.FAILED, "chunk 2 is missing")


async def test_a_chunk_of_the_wrong_size_fails_the_session_with_the_reason(services: Services, owner: User) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3), order=[1, 3])
    short = random_bytes(4000)
    await services.blobs.put_chunk(session.id, 2, body_of(short), len(short), sha256_hex(short))
    await record_all(services, session.id, session.total_chunks)

    assert not await services.finalizer.finalize(session.id)

    assert await failure(services, session.id) == (UploadStatus.FAILED, "chunk 2 has 4000 bytes, not 4096")
    assert await file_ids(services) == []


async def test_a_failed_session_releases_its_quota_and_its_leftovers_are_cleaned(
    services: Services, owner: User
) -> None:
    session = await stored_upload(services, owner, random_bytes(4096 * 3))
    await services.blobs.delete_chunk(session.id, 3)
    await record_all(services, session.id, session.total_chunks)
    assert await services.metadata.uploads.usage(owner.id) == 4096 * 3

    await services.finalizer.finalize(session.id)
    await services.janitor.sweep()

    assert await services.metadata.uploads.usage(owner.id) == 0
    assert await services.blobs.list_chunks(session.id) == []
    assert await services.blobs.file_size(file_id_for(session.id)) is None
    assert await services.blobs.upload_prefixes() == []


async def test_transient_errors_are_retried_a_bounded_number_of_times_then_the_session_fails(
    data_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(data_dir, **{**PIPELINE_SETTINGS, "finalize_max_attempts": 3})
    async with open_services(settings, load_or_create_keys(settings), clock) as services:
        owner = await services.auth.register(name="Ada", email="ada@example.com", password="correct horse battery")
        data = random_bytes(4096 * 2)
        session = await stored_upload(services, owner, data)
        await record_all(services, session.id, session.total_chunks)
        attempts = 0

        async def flaky(*args: object) -> int:
            nonlocal attempts
            attempts += 1
            raise OSError("input/output error")

        monkeypatch.setattr(services.blobs, "assemble", flaky)
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


async def test_a_transient_error_then_success_completes(
    services: Services, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(4096 * 2)
    session = await stored_upload(services, owner, data)
    await record_all(services, session.id, session.total_chunks)
    assemble = services.blobs.assemble
    calls = 0

    async def once_flaky(upload_id: str, file_id: str, chunk_size: int, file_size: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("input/output error")
        return await assemble(upload_id, file_id, chunk_size, file_size)

    monkeypatch.setattr(services.blobs, "assemble", once_flaky)
    with pytest.raises(OSError, match="input/output error"):
        await services.finalizer.finalize(session.id)

    assert await services.finalizer.finalize(session.id)
    assert await read_file(services, file_id_for(session.id)) == data


def test_file_ids_are_derived_from_upload_ids() -> None:
    assert file_id_for("abc") == file_id_for("abc")
    assert file_id_for("abc") != file_id_for("abd")
    assert len(file_id_for("abc")) == 32
