"""The distributed backend: chunks and files in S3, storage events from S3 through SQS, and every
record in DynamoDB, so any number of identical replicas share nothing but these services.

The KV port is still the in-process one here: rate limits and one-time state are per replica until
a shared store is configured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from botocore.exceptions import ClientError

from lfusys.clock import Clock
from lfusys.keys import ServerKeys
from lfusys.settings import Settings
from lfusys.storage.aws.accounts import DynamoApiTokenStore, DynamoTokenStore, DynamoUserStore
from lfusys.storage.aws.blobs import S3BlobStore
from lfusys.storage.aws.clients import AwsClients, error_code, open_clients
from lfusys.storage.aws.files import DynamoFileStore
from lfusys.storage.aws.migrate import create_resources
from lfusys.storage.aws.queue import SqsEventQueue
from lfusys.storage.aws.tus import DynamoTusStore
from lfusys.storage.aws.uploads import DynamoUploadStore
from lfusys.storage.memory.kv import MemoryKV
from lfusys.storage.ports import Backend, BackendNotReady, HealthCheck

_created: set[tuple[str | None, str]] = set()
"""(endpoint, prefix) of the resources this process has already created."""


async def ensure_resources(clients: AwsClients, settings: Settings) -> None:
    """Create the resources (as ``lfusys migrate`` does) once per process and prefix."""
    place = (clients.s3.meta.endpoint_url, clients.names.prefix)
    if place not in _created:
        await create_resources(clients, settings)
        _created.add(place)


def _checks(clients: AwsClients) -> dict[str, HealthCheck]:
    """Each service answers and has its resource (readiness gives each call a short timeout)."""

    async def s3() -> None:
        await clients.s3.head_bucket(Bucket=clients.names.bucket)

    async def sqs() -> None:
        await clients.sqs.get_queue_url(QueueName=clients.names.queue)

    async def dynamodb() -> None:
        await clients.dynamodb.describe_table(TableName=clients.names.table("uploads"))

    return {"s3": s3, "sqs": sqs, "dynamodb": dynamodb}


async def _opened_queue(clients: AwsClients) -> SqsEventQueue:
    try:
        return await SqsEventQueue.open(clients)
    except ClientError as exc:
        if error_code(exc).endswith(("NonExistentQueue", "QueueDoesNotExist")):
            raise not_ready(f"the queue {clients.names.queue} does not exist", clients.names.prefix) from exc
        raise


def not_ready(what: str, prefix: str) -> BackendNotReady:
    """What to tell an operator whose resources are missing."""
    return BackendNotReady(f"{what}: create the resources with `lfusys migrate` (LFUSYS_AWS_PREFIX={prefix})")


@asynccontextmanager
async def open_aws_backend(settings: Settings, keys: ServerKeys, clock: Clock) -> AsyncIterator[Backend]:
    del keys  # download links are presigned by S3; nothing here signs with the app's keys
    async with open_clients(settings.aws) as clients:
        if settings.aws.aws_create_resources:
            await ensure_resources(clients, settings)
        queue = await _opened_queue(clients)
        names = clients.names
        yield Backend(
            name="aws",
            description=f"aws: bucket {names.bucket}, queue {names.queue}, tables {names.table('*')}",
            users=DynamoUserStore(clients),
            tokens=DynamoTokenStore(clients),
            api_tokens=DynamoApiTokenStore(clients),
            tus=DynamoTusStore(clients),
            uploads=DynamoUploadStore(clients),
            files=DynamoFileStore(clients),
            blobs=S3BlobStore(
                clients, copy_parallelism=settings.aws.aws_copy_parallelism, on_object_created=queue.send
            ),
            queue=queue,
            kv=MemoryKV(clock),
            links=None,
            checks=_checks(clients),
        )


async def migrate_aws(settings: Settings) -> list[str]:
    async with open_clients(settings.aws) as clients:
        return await create_resources(clients, settings)
