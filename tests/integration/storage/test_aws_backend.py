"""The aws backend as users and operators meet it, against the emulator: two replicas that share nothing
but S3, SQS and DynamoDB (and agree on keys without being told any), the objects a finished upload
leaves in the bucket as a plain S3 client sees them, a malformed message on its way to the dead-letter
queue and ``lfusys dead-letters``, and readiness naming the service that is missing."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aioboto3
import httpx
import pytest
from aiobotocore.config import AioConfig
from types_aiobotocore_s3 import S3Client
from types_aiobotocore_sqs import SQSClient

from lfusys.app import create_app
from lfusys.settings import Settings
from lfusys.storage.aws.resources import Names
from tests.aws_emulator import emulator_endpoint, resource_prefix
from tests.support import (
    API,
    AppClient,
    LiveServer,
    chunks_of,
    csrf_headers,
    download,
    eventually,
    lfusys_command,
    make_settings,
    put_chunk,
    random_bytes,
    signed_in,
    start_upload,
    subprocess_env,
    wait_for_status,
)


@pytest.fixture
async def s3() -> AsyncIterator[S3Client]:
    """A plain S3 client, as anyone with read access to the bucket would use."""
    config = AioConfig(s3={"addressing_style": "path"})
    async with aioboto3.Session().client("s3", endpoint_url=emulator_endpoint(), config=config) as client:
        yield client


@pytest.fixture
async def sqs() -> AsyncIterator[SQSClient]:
    async with aioboto3.Session().client("sqs", endpoint_url=emulator_endpoint()) as client:
        yield client


@pytest.fixture
def replicas(tmp_path: Path, data_dir: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes on the same resources (their prefix comes from the data directory), each with
    its worker; neither is given any key."""
    servers: list[LiveServer] = []
    try:
        for name in ("a", "b"):
            log = tmp_path / f"replica-{name}.log"
            servers.append(
                LiveServer(data_dir, log, backend="aws", LFUSYS_MIN_CHUNK_SIZE="1024", LFUSYS_DEFAULT_CHUNK_SIZE="4096")
            )
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


async def test_a_sign_in_and_a_csrf_token_from_one_replica_work_on_the_other(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    first, second = replicas
    data = random_bytes(4096 * 3 + 17)
    async with httpx.AsyncClient(base_url=first.url, timeout=20) as on_first:
        await signed_in(on_first)
        headers = await csrf_headers(on_first)
        async with httpx.AsyncClient(base_url=second.url, timeout=20, cookies=on_first.cookies) as on_second:
            me = await on_second.get(f"{API}/auth/me")
            # The CSRF token the first replica handed out, checked by the second.
            created = await on_second.post(
                f"{API}/uploads",
                json={"file_name": "a.bin", "file_type": "application/octet-stream", "file_size": len(data)},
                headers=headers,
            )
            assert created.status_code == 201, created.text
            upload_id = created.json()["upload_id"]
            # Chunks to either replica, as a load balancer without sticky sessions would send them.
            for n, chunk in enumerate(chunks_of(data, 4096), start=1):
                response = await put_chunk(on_first if n % 2 else on_second, upload_id, n, chunk)
                assert response.status_code == 200, response.text
            done = await wait_for_status(on_second, upload_id, within=20)
            fetched = await download(on_first, done["file_id"])

    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"
    assert fetched.content == data


async def test_a_finished_upload_is_one_object_in_the_bucket_and_no_chunk_is_left(
    app_settings: Settings, s3: S3Client
) -> None:
    data = random_bytes(4096 * 4 + 5)
    async with AppClient(create_app(app_settings)) as client:
        await signed_in(client)
        created = (await start_upload(client, len(data))).json()
        for n, chunk in enumerate(chunks_of(data, created["chunk_size"]), start=1):
            assert (await put_chunk(client, created["upload_id"], n, chunk)).status_code == 200
        done = await wait_for_status(client, created["upload_id"])
        bucket = Names(app_settings.aws.aws_prefix).bucket

        async def chunks_deleted() -> bool:
            listed = await s3.list_objects_v2(Bucket=bucket, Prefix=f"uploads/{created['upload_id']}/")
            return listed.get("KeyCount", 0) == 0

        await eventually(chunks_deleted)
        stored = await s3.get_object(Bucket=bucket, Key=f"files/{done['file_id']}")
        content = await stored["Body"].read()
        everything = await s3.list_objects_v2(Bucket=bucket)

    assert content == data
    assert [item["Key"] for item in everything.get("Contents", [])] == [f"files/{done['file_id']}"]


@pytest.fixture
def app_settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, backend="aws", min_chunk_size=1024, default_chunk_size=4096)


async def test_a_malformed_message_ends_in_the_dead_letter_queue_and_is_listed(
    tmp_path: Path, data_dir: Path, sqs: SQSClient
) -> None:
    server = LiveServer(
        data_dir,
        tmp_path / "server.log",
        backend="aws",
        LFUSYS_QUEUE_MAX_RECEIVES="2",
        LFUSYS_QUEUE_VISIBILITY_TIMEOUT="1s",
    )
    try:
        queue = await sqs.get_queue_url(QueueName=f"{resource_prefix(data_dir)}-events")
        await sqs.send_message(QueueUrl=queue["QueueUrl"], MessageBody="{not json")

        def listed() -> list[dict[str, object]]:
            result = subprocess.run(
                [*lfusys_command(), "dead-letters"],
                env=subprocess_env(data_dir, LFUSYS_BACKEND="aws"),
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            return [json.loads(line) for line in result.stdout.splitlines()]

        async def dead_lettered() -> bool:
            return bool(await asyncio.to_thread(listed))

        await eventually(dead_lettered, within=20)
        letters = listed()
    finally:
        server.stop()

    assert [letter["body"] for letter in letters] == ["{not json"]
    log = server.log_path.read_text()
    assert log.count("malformed event left for the dead-letter queue") >= 2  # once per delivery


@pytest.mark.parametrize("missing", ["sqs", "dynamodb"])
async def test_readiness_names_the_service_whose_resource_is_gone(app_settings: Settings, missing: str) -> None:
    names = Names(app_settings.aws.aws_prefix)
    async with AppClient(create_app(app_settings)) as client:
        assert (await client.get("/health/ready")).json() == {"status": "ok", "s3": "ok", "sqs": "ok", "dynamodb": "ok"}
        session = aioboto3.Session()
        if missing == "sqs":
            async with session.client("sqs", endpoint_url=emulator_endpoint()) as sqs:
                queue = await sqs.get_queue_url(QueueName=names.queue)
                await sqs.delete_queue(QueueUrl=queue["QueueUrl"])
        else:
            async with session.client("dynamodb", endpoint_url=emulator_endpoint()) as dynamodb:
                await dynamodb.delete_table(TableName=names.table("uploads"))

        response = await client.get("/health/ready")
        live = await client.get("/health/live")

    assert response.status_code == 503
    assert response.json() == {"error": f"{missing} unavailable"}
    assert live.status_code == 200


def test_without_its_resources_every_command_says_to_run_migrate_and_migrate_creates_them(
    tmp_path: Path, data_dir: Path
) -> None:
    env = subprocess_env(data_dir, LFUSYS_BACKEND="aws", LFUSYS_AWS_CREATE_RESOURCES="false")

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*lfusys_command(), *command], env=env, capture_output=True, text=True, timeout=60)

    refused = [run(command) for command in ("serve", "worker", "dead-letters")]
    migrated = run("migrate")
    again = run("migrate")
    listed = run("dead-letters")

    for result in refused:
        assert result.returncode == 2
        assert "lfusys migrate" in result.stderr
        assert f"LFUSYS_AWS_PREFIX={resource_prefix(data_dir)}" in result.stderr
        assert "Traceback" not in result.stderr
    assert migrated.returncode == 0, migrated.stderr
    assert f"{resource_prefix(data_dir)}-uploads" in migrated.stdout
    assert again.returncode == 0, again.stderr
    assert (listed.returncode, listed.stdout) == (0, "")
