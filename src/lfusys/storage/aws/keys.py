"""Server keys on the aws backend: one item in the ``meta`` table, written once by whichever replica
comes first and read by all, so every replica signs and checks with the same keys and nobody has to
configure them. Secrets given in the environment still win."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from lfusys.keys import KEY_NAMES, ServerKeys, new_key, with_environment
from lfusys.settings import Settings
from lfusys.storage.aws.backend import ensure_resources, not_ready
from lfusys.storage.aws.clients import error_code, open_clients
from lfusys.storage.aws.dynamo import Table, expression

_ITEM = {"name": "server-keys"}


async def _load_or_create(settings: Settings) -> ServerKeys:
    async with open_clients(settings.aws) as clients:
        if settings.aws.aws_create_resources:
            await ensure_resources(clients, settings)
        meta = Table(clients.dynamodb, clients.names.table("meta"))
        # Each key is set only where none is stored: concurrent replicas all end up with the first one's.
        assignments = ", ".join(f"#{name} = if_not_exists(#{name}, :{name})" for name in KEY_NAMES)
        try:
            stored = await meta.update(
                _ITEM, expression(f"SET {assignments}", **{name: new_key() for name in KEY_NAMES})
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise not_ready(f"the table {meta.name} does not exist", clients.names.prefix) from exc
            raise
        if stored is None:  # an unconditional update always returns the item
            raise RuntimeError("the server keys could not be stored")
        return with_environment({name: str(stored[name]) for name in KEY_NAMES}, settings)


def load_or_create_aws_keys(settings: Settings) -> ServerKeys:
    """The deployment's keys (callable with or without a running event loop: it uses a thread of its own)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="server-keys") as thread:
        return thread.submit(asyncio.run, _load_or_create(settings)).result()
