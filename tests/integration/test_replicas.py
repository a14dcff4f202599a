"""Replicas that share nothing but the backing services, behind a real load balancer.

Three ``lfusys serve`` processes on the aws backend (one emulator) and one Redis, each running its event
worker, behind HAProxy (round robin, no stickiness, ``X-Forwarded-For`` trusted from it). Ten uploads
send their chunks through it concurrently, so
every replica takes chunks of every upload; one replica is killed with SIGKILL as soon as it starts
finalizing. Every upload must still end ``completed`` exactly once with its bytes, with one file row and
one object each and no chunk object left, and a sign-in made through the load balancer is valid on
every replica, and a rate limit counts the requests of all three replicas together.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aioboto3
import httpx
import pytest
from aiobotocore.config import AioConfig

from lfusys.sessions.finalizer import file_id_for
from lfusys.storage.aws.clients import open_clients
from lfusys.storage.aws.resources import Names
from lfusys.storage.aws.uploads import DynamoUploadStore
from tests.aws_emulator import emulator_endpoint, resource_prefix
from tests.load_balancer import LoadBalancer
from tests.redis_server import redis_env
from tests.support import (
    API,
    LiveServer,
    chunks_of,
    csrf_headers,
    download,
    make_settings,
    sha256_hex,
    signed_in,
    start_upload,
)

UPLOADS = 10
CHUNK = 64 * 1024
CHUNKS_PER_UPLOAD = 24
IN_FLIGHT = 16
REPLICA_SETTINGS: dict[str, str] = {
    "LFUSYS_MIN_CHUNK_SIZE": "1024",
    "LFUSYS_DEFAULT_CHUNK_SIZE": str(CHUNK),
    "LFUSYS_MAX_CHUNK_PUTS_PER_USER": "64",
    # A dead replica's work is taken over quickly: its leases and hidden messages lapse in seconds.
    "LFUSYS_FINALIZE_LEASE": "2s",
    "LFUSYS_QUEUE_VISIBILITY_TIMEOUT": "2s",
    "LFUSYS_STALLED_AFTER": "1s",
    "LFUSYS_JANITOR_INTERVAL": "200ms",
    # One part copy at a time: a finalization lasts long enough to be interrupted.
    "LFUSYS_AWS_COPY_PARALLELISM": "1",
    "LFUSYS_TRUSTED_PROXIES": "127.0.0.1",
    "LFUSYS_RATE_LIMIT_LOGIN_EMAIL": "6",
}
VICTIM = 1
"""The replica (index) that is killed."""


@pytest.fixture
def replicas(tmp_path: Path, data_dir: Path) -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    try:
        for n in range(3):
            log = tmp_path / f"replica-{n}.log"
            shared = {**REPLICA_SETTINGS, **redis_env(data_dir)}
            started.append(LiveServer(data_dir, log, backend="aws", workers=1, **shared))
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def balancer(replicas: list[LiveServer], tmp_path: Path) -> Iterator[LoadBalancer]:
    lb = LoadBalancer([server.url.removeprefix("http://") for server in replicas], tmp_path)
    yield lb
    lb.stop()


async def _put_with_retries(client: httpx.AsyncClient, upload_id: str, n: int, data: bytes) -> int:
    """Send one chunk as a client would: again after a refusal or a broken connection (a replica died)."""
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256_hex(data)}
    for attempt in range(20):
        try:
            response = await client.put(f"{API}/uploads/{upload_id}/chunks/{n}", content=data, headers=headers)
            if response.status_code == 200:
                return attempt
            if response.status_code == 409:
                # A first attempt that broke off may have been stored after all, and been the last chunk:
                # the upload is then being finalized and takes no more chunks.
                state = (await client.get(f"{API}/uploads/{upload_id}")).json()
                assert state["status"] in {"finalizing", "completed"}, response.text
                return attempt
            assert response.status_code in {429, 502, 503}, response.text
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError(f"chunk {n} of {upload_id} was never accepted")


async def _kill_when_finalizing(victim: LiveServer, killed: dict[str, Any]) -> None:
    """SIGKILL the victim (by PID) the moment its log says it started finalizing an upload."""
    while victim.process.poll() is None:
        text = victim.log_path.read_text(errors="replace")
        if '"finalizing"' in text:
            victim.process.kill()
            killed["at"] = time.monotonic()
            return
        await asyncio.sleep(0.005)


def _finalizing_in(log: str) -> dict[str, int]:
    """Upload id → the highest finalize attempt a replica's log shows it starting."""
    started: dict[str, int] = {}
    for line in log.splitlines():
        if line.startswith("{") and '"finalizing"' in line:
            record = json.loads(line)
            started[record["upload_id"]] = max(started.get(record["upload_id"], 0), record.get("attempt", 1))
    return started


async def test_uploads_through_a_load_balancer_survive_a_replica_killed_while_finalizing(
    replicas: list[LiveServer], balancer: LoadBalancer, data_dir: Path
) -> None:
    files = [os.urandom(CHUNK * (CHUNKS_PER_UPLOAD - 1) + 1000 + i) for i in range(UPLOADS)]
    killed: dict[str, Any] = {}
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=balancer.url, timeout=30, limits=httpx.Limits(max_connections=32)) as client:
        await signed_in(client)
        created = [(await start_upload(client, len(data), name=f"part-{i}.bin")).json() for i, data in enumerate(files)]
        assert all(up["chunk_size"] == CHUNK for up in created)
        killer = asyncio.create_task(_kill_when_finalizing(replicas[VICTIM], killed))
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def send(upload_id: str, n: int, chunk: bytes) -> int:
            async with slots:
                return await _put_with_retries(client, upload_id, n, chunk)

        retries = await asyncio.gather(
            *(
                send(up["upload_id"], n, chunk)
                for up, data in zip(created, files, strict=True)
                for n, chunk in enumerate(chunks_of(data, CHUNK), start=1)
            )
        )
        chunks_sent = time.monotonic()

        async def finished() -> list[dict[str, Any]]:
            return [(await client.get(f"{API}/uploads/{up['upload_id']}")).json() for up in created]

        deadline = time.monotonic() + 60
        states = await finished()
        while {state["status"] for state in states} != {"completed"}:
            assert time.monotonic() < deadline, f"not all completed: {[state['status'] for state in states]}"
            await asyncio.sleep(0.1)
            states = await finished()
        completed_at = time.monotonic()
        killer.cancel()

        listed = (await client.get(f"{API}/files", params={"limit": 100})).json()["files"]
        contents = [(await download(client, state["file_id"])).content for state in states]
        cookies = client.cookies
        on_each = []
        for server in replicas:
            if server.process.poll() is None:
                async with httpx.AsyncClient(base_url=server.url, cookies=cookies, timeout=10) as direct:
                    on_each.append((await direct.get(f"{API}/auth/me")).status_code)

    # The victim died mid-finalization and another replica finished its work.
    assert "at" in killed, "the killed replica never started finalizing"
    victim_log = replicas[VICTIM].log_path.read_text(errors="replace")
    taken_from_victim = set(_finalizing_in(victim_log))
    survivors = [
        _finalizing_in(server.log_path.read_text(errors="replace")) for i, server in enumerate(replicas) if i != VICTIM
    ]
    taken_over = {upload for log in survivors for upload, attempt in log.items() if attempt > 1}
    assert taken_from_victim & taken_over, "no finalization of the killed replica was taken over"

    # Every upload completed once, with its bytes, one file row and one object each, and no chunk left.
    upload_ids = [up["upload_id"] for up in created]
    assert [state["file_id"] for state in states] == [file_id_for(upload_id) for upload_id in upload_ids]
    assert sorted(f["id"] for f in listed) == sorted(file_id_for(upload_id) for upload_id in upload_ids)
    assert [sha256_hex(content) for content in contents] == [sha256_hex(data) for data in files]
    bucket = Names(resource_prefix(data_dir)).bucket
    config = AioConfig(s3={"addressing_style": "path"})
    async with aioboto3.Session().client("s3", endpoint_url=emulator_endpoint(), config=config) as s3:
        objects = await s3.list_objects_v2(Bucket=bucket, Prefix="files/")
        deadline = time.monotonic() + 20
        while (left := (await s3.list_objects_v2(Bucket=bucket, Prefix="uploads/")).get("KeyCount", 0)) > 0:
            assert time.monotonic() < deadline, f"{left} chunk objects left"
            await asyncio.sleep(0.2)
    assert sorted(item["Key"] for item in objects.get("Contents", [])) == sorted(
        f"files/{file_id_for(upload_id)}" for upload_id in upload_ids
    )
    # A sign-in made through the load balancer is valid on every replica that still runs.
    assert on_each == [200, 200]

    settings = make_settings(data_dir, backend="aws")
    async with open_clients(settings.aws) as aws:
        sessions = [await DynamoUploadStore(aws).get(upload_id) for upload_id in upload_ids]
    attempts = [session.finalize_attempts for session in sessions if session is not None]
    print(
        f"\nreplica test: {UPLOADS} uploads, {len(retries)} chunks of {CHUNK // 1024} KiB,"
        " through HAProxy to 3 replicas;"
        f" chunks sent in {chunks_sent - began:.2f} s, all completed {completed_at - began:.2f} s after the start;"
        f" replica {VICTIM} killed {killed['at'] - began:.2f} s after the start while finalizing"
        f" {sorted(taken_from_victim)}; chunk PUTs sent again after a failure: {sum(retries)};"
        f" finalizations taken over after the kill: {len(taken_over)}; finalize attempts per upload: {attempts}"
    )


async def test_a_rate_limit_counts_the_requests_of_every_replica_once(
    replicas: list[LiveServer], balancer: LoadBalancer
) -> None:
    async with httpx.AsyncClient(base_url=balancer.url, timeout=10) as client:
        await signed_in(client, "owner@example.com")
        headers = await csrf_headers(client)
        # The sign-in was the first attempt at this address; five wrong passwords make six, spread over the
        # three replicas in turn (two each), and a seventh attempt is one too many wherever it lands.
        guesses = [
            await client.post(
                f"{API}/auth/login", json={"email": "owner@example.com", "password": f"guess {n}"}, headers=headers
            )
            for n in range(6)
        ]

    assert [response.status_code for response in guesses] == [401] * 5 + [429]
    assert int(guesses[-1].headers["retry-after"]) >= 1
