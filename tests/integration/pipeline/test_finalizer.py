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
    completed,
    database,
    eventually,
    random_bytes,
    stored_upload,
)
from tests.support import chunks_of, make_settings, sha256_hex


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


def test_file_ids_are_derived_from_upload_ids() -> None:
    assert file_id_for("abc") == file_id_for("abc")
    assert file_id_for("abc") != file_id_for("abd")
    assert len(file_id_for("abc")) == 32
