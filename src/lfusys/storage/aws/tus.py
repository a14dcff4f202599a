"""The TusStore port over the ``uploads`` table: a tus upload is one more item of its session
(``sk = "tus"``), so it lives and goes with it; each conditional step is one conditional update."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lfusys.storage.aws.clients import AwsClients
from lfusys.storage.aws.dynamo import Table, expression, stamp, unstamp
from lfusys.tus.records import TusUpload

_SK = "tus"


class DynamoTusStore:
    def __init__(self, clients: AwsClients) -> None:
        self._uploads = Table(clients.dynamodb, clients.names.table("uploads"))

    async def create(self, upload: TusUpload) -> None:
        item = {
            "id": upload.id,
            "sk": _SK,
            "owner_id": upload.owner_id,
            "length": upload.length,
            "deferred": upload.deferred,
            "concat": upload.concat,
            "offset": upload.offset,
            "metadata": upload.metadata,
            "created_at": stamp(upload.created_at),
        }
        if not await self._uploads.put(item, expression("attribute_not_exists(#id)")):
            raise ValueError(f"tus upload {upload.id} exists")

    async def get(self, upload_id: str) -> TusUpload | None:
        item = await self._uploads.get({"id": upload_id, "sk": _SK})
        return _tus_upload(item) if item else None

    async def claim(self, upload_id: str, offset: int, writer: str, until: datetime, now: datetime) -> TusUpload | None:
        item = await self._uploads.update(
            {"id": upload_id, "sk": _SK},
            expression("SET #writer = :writer, #writer_until = :until", writer=writer, until=stamp(until)),
            expression(
                "attribute_exists(#id) AND #offset = :offset"
                " AND (attribute_not_exists(#writer) OR #writer_until <= :now)",
                offset=offset,
                now=stamp(now),
            ),
        )
        return _tus_upload(item) if item else None

    async def advance(self, upload_id: str, writer: str, offset: int, new_offset: int, until: datetime) -> bool:
        item = await self._uploads.update(
            {"id": upload_id, "sk": _SK},
            expression("SET #offset = :new_offset, #writer_until = :until", new_offset=new_offset, until=stamp(until)),
            expression("#writer = :writer AND #offset = :offset", writer=writer, offset=offset),
        )
        return item is not None

    async def release(self, upload_id: str, writer: str) -> None:
        await self._uploads.update(
            {"id": upload_id, "sk": _SK},
            expression("REMOVE #writer, #writer_until"),
            expression("#writer = :writer", writer=writer),
        )

    async def set_length(self, upload_id: str, length: int) -> bool:
        await self._uploads.update(
            {"id": upload_id, "sk": _SK},
            expression("SET #length = :length, #deferred = :false", length=length, false=False),
            expression("#deferred = :true AND #length >= :length", true=True, length=length),
        )
        upload = await self.get(upload_id)
        return upload is not None and not upload.deferred and upload.length == length

    async def delete(self, upload_id: str) -> None:
        await self._uploads.delete({"id": upload_id, "sk": _SK})


def _tus_upload(item: dict[str, Any]) -> TusUpload:
    return TusUpload(
        id=item["id"],
        owner_id=item["owner_id"],
        length=int(item["length"]),
        deferred=bool(item.get("deferred", False)),
        concat=item.get("concat", ""),
        offset=int(item["offset"]),
        metadata=item.get("metadata", ""),
        created_at=unstamp(item["created_at"]),
        writer=item.get("writer"),
        writer_until=unstamp(item["writer_until"]) if item.get("writer_until") else None,
    )
