"""Several processes over the same data, and restarts, on the backends whose data outlives a process (the
local backend's data directory; the aws backend's bucket, queue and tables). Races between workers, a
worker killed between assembling the file and completing the session and taken over after a restart,
queued events that survive a restart, separate worker processes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from lfusys.files.records import FileRecord
from lfusys.services import Services, background_work
from lfusys.sessions.finalizer import file_id_for
from lfusys.sessions.records import UploadStatus
from lfusys.storage.objects import ChunkStored, chunks_in_event
from tests.support import (
    FakeClock,
    LiveServer,
    WorkerProcess,
    completed,
    download,
    eventually,
    file_bytes,
    file_ids,
    opened_services,
    put_chunk,
    random_bytes,
    record_all,
    register_owner,
    signed_in,
    start_upload,
    stored_session,
    stored_upload,
    wait_for_status,
)

pytestmark = pytest.mark.durable_only("processes that share data, and restarts")


class Killed(BaseException):
    """Stands for the process dying at this exact point: nothing after it runs."""


@pytest.fixture
async def services(data_dir: Path, clock: FakeClock, backend_name: str) -> AsyncIterator[Services]:
    async with opened_services(data_dir, clock, backend_name) as opened:
        yield opened


@pytest.fixture
async def second_process(data_dir: Path, clock: FakeClock, backend_name: str) -> AsyncIterator[Services]:
    """Another worker over the same data, with connections of its own."""
    async with opened_services(data_dir, clock, backend_name) as other:
        yield other


async def test_two_workers_racing_on_one_session_make_one_file(
    services: Services, second_process: Services, clock: FakeClock
) -> None:
    owner = await register_owner(services)
    data = random_bytes(4096 * 6)
    session = await stored_upload(services, owner, data)
    await record_all(services, clock, session)

    results = await asyncio.gather(
        services.finalizer.finalize(session.id), second_process.finalizer.finalize(session.id)
    )

    assert sorted(results) == [False, True]
    assert await file_ids(services, owner) == [file_id_for(session.id)]
    assert await file_bytes(second_process, file_id_for(session.id)) == data


async def test_two_workers_recording_the_last_chunk_at_once_make_one_file(
    services: Services, second_process: Services
) -> None:
    owner = await register_owner(services)
    data = random_bytes(4096 * 3)
    session = await stored_upload(services, owner, data)
    for n in (1, 2):
        await services.finalizer.on_chunks_stored([ChunkStored(session.id, n)])

    await asyncio.gather(
        services.finalizer.on_chunks_stored([ChunkStored(session.id, 3)]),
        second_process.finalizer.on_chunks_stored([ChunkStored(session.id, 3)]),
    )

    assert (await stored_session(services, session.id)).status is UploadStatus.COMPLETED
    assert await file_ids(services, owner) == [file_id_for(session.id)]
    assert await file_bytes(services, file_id_for(session.id)) == data


async def test_a_worker_killed_between_assembly_and_completion_is_taken_over_after_restart(
    data_dir: Path, clock: FakeClock, backend_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease = timedelta(seconds=60)
    overrides = {"finalize_lease": lease, "stalled_after": timedelta(0), "janitor_interval": timedelta(milliseconds=50)}
    data = random_bytes(4096 * 4 + 1)

    async with opened_services(data_dir, clock, backend_name, **overrides) as first_run:
        owner = await register_owner(first_run)
        session = await stored_upload(first_run, owner, data)
        await record_all(first_run, clock, session)

        async def die(record: FileRecord) -> FileRecord:
            raise Killed

        monkeypatch.setattr(first_run.backend.files, "create_if_absent", die)
        with pytest.raises(Killed):
            await first_run.finalizer.finalize(session.id)
        assert (await stored_session(first_run, session.id)).status is UploadStatus.FINALIZING
        assert await first_run.backend.blobs.file_size(file_id_for(session.id)) == len(data)  # assembled, not recorded

    monkeypatch.undo()
    clock.advance(lease + timedelta(seconds=1))  # the dead worker's lease lapses
    async with opened_services(data_dir, clock, backend_name, **overrides) as second_run, background_work(second_run):
        await eventually(lambda: completed(second_run, session.id))

        done = await stored_session(second_run, session.id)
        assert done.status is UploadStatus.COMPLETED
        assert done.file_id == file_id_for(session.id)
        assert await file_ids(second_run, owner) == [file_id_for(session.id)]
        assert await file_bytes(second_run, file_id_for(session.id)) == data


async def test_queued_events_survive_a_restart(data_dir: Path, clock: FakeClock, backend_name: str) -> None:
    data = random_bytes(4096 * 3)
    async with opened_services(data_dir, clock, backend_name) as before:
        owner = await register_owner(before)
        session = await stored_upload(before, owner, data)
        # Seen (and at once made visible again), not handled.
        seen = await before.backend.queue.receive(10, 0, 0)
        assert sum(len(chunks_in_event(message.body)) for message in seen) == 3

    async with opened_services(data_dir, clock, backend_name) as after, background_work(after):
        await eventually(lambda: completed(after, session.id))

        stored = await stored_session(after, session.id)
        assert stored.status is UploadStatus.COMPLETED
        assert stored.file_id is not None
        assert await file_bytes(after, stored.file_id) == data
        assert await after.backend.queue.dead_letters(10) == []


async def test_separate_worker_processes_share_the_work(tmp_path: Path, data_dir: Path, backend_name: str) -> None:
    small = {"LFUSYS_MIN_CHUNK_SIZE": "1024", "LFUSYS_DEFAULT_CHUNK_SIZE": "4096"}
    # All 36 chunks go at once: room for them in flight.
    server = LiveServer(
        data_dir,
        tmp_path / "server.log",
        backend=backend_name,
        LFUSYS_RUN_WORKER="false",
        LFUSYS_MAX_CHUNK_PUTS_PER_USER="64",
        LFUSYS_MIN_CHUNK_SIZE=small["LFUSYS_MIN_CHUNK_SIZE"],
        LFUSYS_DEFAULT_CHUNK_SIZE=small["LFUSYS_DEFAULT_CHUNK_SIZE"],
    )
    workers = [
        WorkerProcess(
            data_dir, tmp_path / f"worker{i}.log", LFUSYS_BACKEND=backend_name, LFUSYS_WORKER_CONCURRENCY="2", **small
        )
        for i in range(2)
    ]
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await signed_in(client)
            files = [os.urandom(4096 * 5 + i) for i in range(6)]
            created = [(await start_upload(client, len(data))).json() for data in files]
            puts = await asyncio.gather(
                *(
                    put_chunk(client, up["upload_id"], n, data[(n - 1) * 4096 : n * 4096])
                    for up, data in zip(created, files, strict=True)
                    for n in range(1, up["total_chunks"] + 1)
                )
            )
            assert {put.status_code for put in puts} == {200}
            states = [await wait_for_status(client, up["upload_id"], within=30) for up in created]

            for state, data in zip(states, files, strict=True):
                assert (await download(client, state["file_id"])).content == data
            listed = (await client.get("/api/v1/files", params={"limit": 100})).json()["files"]
            assert sorted(f["id"] for f in listed) == sorted(s["file_id"] for s in states)
    finally:
        exit_codes = [worker.stop() for worker in workers]
        server.stop()

    assert exit_codes == [0, 0]
    logs = [worker.log_path.read_text() for worker in workers]
    assert all('"worker stopped"' in log for log in logs)
    finalized_by = [log.count('"upload completed"') for log in logs]
    assert sum(finalized_by) == 6
