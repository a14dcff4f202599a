"""Real processes: events survive a restart, and separate worker processes compete for them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from lfusys.app import background_work, open_services
from lfusys.keys import load_or_create_keys
from lfusys.storage.local.queue import LocalEventQueue
from lfusys.storage.ports import UploadStatus
from tests.integration.pipeline.conftest import PIPELINE_SETTINGS, completed, eventually, random_bytes, stored_upload
from tests.support import (
    LiveServer,
    WorkerProcess,
    download,
    make_settings,
    put_chunk,
    signed_in,
    start_upload,
    wait_for_status,
)


async def test_queued_events_survive_a_restart(data_dir: Path) -> None:
    settings = make_settings(data_dir, **PIPELINE_SETTINGS)
    keys = load_or_create_keys(settings)
    data = random_bytes(4096 * 3)
    async with open_services(settings, keys) as before:
        owner = await before.auth.register(name="Ada", email="ada@example.com", password="correct horse battery")
        session = await stored_upload(before, owner, data)
        assert isinstance(before.queue, LocalEventQueue)
        assert await before.queue.pending_count() == 3

    async with open_services(settings, keys) as after, background_work(after):
        await eventually(lambda: completed(after, session.id))

        stored = await after.metadata.uploads.get(session.id)
        assert stored is not None
        assert stored.status is UploadStatus.COMPLETED
        assert stored.file_id is not None
        assert b"".join([b async for b in after.blobs.read_file(stored.file_id, None)]) == data


async def test_separate_worker_processes_share_the_work(tmp_path: Path, data_dir: Path) -> None:
    small = {"LFUSYS_MIN_CHUNK_SIZE": "1024", "LFUSYS_DEFAULT_CHUNK_SIZE": "4096"}
    # All 36 chunks go at once: room for them in flight.
    server = LiveServer(
        data_dir,
        tmp_path / "server.log",
        LFUSYS_RUN_WORKER="false",
        LFUSYS_MAX_CHUNK_PUTS_PER_USER="64",
        LFUSYS_MIN_CHUNK_SIZE=small["LFUSYS_MIN_CHUNK_SIZE"],
        LFUSYS_DEFAULT_CHUNK_SIZE=small["LFUSYS_DEFAULT_CHUNK_SIZE"],
    )
    workers = [
        WorkerProcess(data_dir, tmp_path / f"worker{i}.log", LFUSYS_WORKER_CONCURRENCY="2", **small) for i in range(2)
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
