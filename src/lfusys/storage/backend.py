"""One backend, opened from settings: the bundle of adapters the app needs, whatever the backend.

``LFUSYS_BACKEND`` chooses it: ``local`` (the embedded default: filesystem, SQLite and a SQLite event
queue under the data directory), ``memory`` (everything in the process, gone at exit: for tests and
for trying the product out), ``aws`` (S3, SQS and DynamoDB: the distributed mode, for replicas behind a
load balancer). ``app.py`` and ``cli.py`` know nothing else about storage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lfusys.clock import Clock
from lfusys.keys import ServerKeys, load_or_create_keys
from lfusys.settings import Settings
from lfusys.storage.local.backend import migrate_local, open_local_backend
from lfusys.storage.memory.backend import memory_keys, open_memory_backend
from lfusys.storage.ports import Backend


def server_keys(settings: Settings) -> ServerKeys:
    """The keys every process of this deployment signs with (tokens, CSRF, download links)."""
    if settings.core.backend == "memory":
        return memory_keys(settings)
    if settings.core.backend == "aws":
        # The aws modules are imported only here and below: the other backends start without the AWS SDK.
        from lfusys.storage.aws.keys import load_or_create_aws_keys

        return load_or_create_aws_keys(settings)
    return load_or_create_keys(settings)


@asynccontextmanager
async def open_backend(settings: Settings, keys: ServerKeys, clock: Clock) -> AsyncIterator[Backend]:
    """Open the configured backend for the life of the block (the local schema migrated first; AWS
    resources created first only if ``LFUSYS_AWS_CREATE_RESOURCES`` says so)."""
    if settings.core.backend == "aws":
        from lfusys.storage.aws.backend import open_aws_backend

        opener = open_aws_backend
    else:
        opener = open_memory_backend if settings.core.backend == "memory" else open_local_backend
    async with opener(settings, keys, clock) as backend:
        yield backend


async def migrate(settings: Settings) -> list[str]:
    """Bring the backend's schema (or, on aws, its resources) up to date; return what was done."""
    if settings.core.backend == "memory":
        return []
    if settings.core.backend == "aws":
        from lfusys.storage.aws.backend import migrate_aws

        return await migrate_aws(settings)
    return await migrate_local(settings)


async def prepare(settings: Settings) -> None:
    """What must be in place before server processes start: the local schema; AWS resources only when
    asked to create them (in production ``lfusys migrate`` runs once, with the rights to create)."""
    if settings.core.backend != "aws" or settings.aws.aws_create_resources:
        await migrate(settings)
