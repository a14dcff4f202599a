"""Finished files in DynamoDB: one item per file, an owner's files newest first through the
``by-owner`` index, and deletion that releases the file's bytes from the owner's usage in the same
transaction."""

from __future__ import annotations

from typing import Any

from lfusys.files.records import FilePage, FileRecord
from lfusys.storage.aws.clients import AwsClients
from lfusys.storage.aws.dynamo import Table, TransactionCancelled, expression, stamp, transact, unstamp
from lfusys.storage.cursors import decode_cursor, encode_cursor


def _record(item: dict[str, Any]) -> FileRecord:
    return FileRecord(
        id=item["id"],
        owner_id=item["owner_id"],
        upload_id=item["upload_id"],
        name=item["name"],
        type=item["type"],
        size=item["size"],
        checksum=item["checksum"],
        created_at=unstamp(item["created_at"]),
    )


class DynamoFileStore:
    """The FileStore port over the ``files`` and ``usage`` tables."""

    def __init__(self, clients: AwsClients) -> None:
        self._client = clients.dynamodb
        self._files = Table(clients.dynamodb, clients.names.table("files"))
        self._usage = Table(clients.dynamodb, clients.names.table("usage"))

    async def create_if_absent(self, record: FileRecord) -> FileRecord:
        item = {
            "id": record.id,
            "owner_id": record.owner_id,
            "upload_id": record.upload_id,
            "name": record.name,
            "type": record.type,
            "size": record.size,
            "checksum": record.checksum,
            "created_at": stamp(record.created_at),
            "created_key": f"{stamp(record.created_at)}#{record.id}",
        }
        if await self._files.put(item, expression("attribute_not_exists(#id)")):
            return record
        stored = await self.get(record.id)
        if stored is None:  # deleted between the two steps: what was asked for is absent again
            return await self.create_if_absent(record)
        return stored

    async def get(self, file_id: str) -> FileRecord | None:
        item = await self._files.get({"id": file_id})
        return _record(item) if item else None

    async def list_by_owner(self, owner_id: str, limit: int, cursor: str | None) -> FilePage:
        if cursor is None:
            key = expression("#owner_id = :owner", owner=owner_id)
        else:
            created_at, file_id = decode_cursor(cursor, 2)
            key = expression(
                "#owner_id = :owner AND #created_key < :after", owner=owner_id, after=f"{created_at}#{file_id}"
            )
        items = self._files.query(key, index="by-owner", newest_first=True, limit=limit + 1)
        records = [_record(item) async for item in items]
        page = records[:limit]
        last = page[-1] if len(records) > limit else None
        return FilePage(files=page, next_cursor=encode_cursor(stamp(last.created_at), last.id) if last else None)

    async def delete(self, file_id: str, owner_id: str) -> FileRecord | None:
        record = await self.get(file_id)
        if record is None or record.owner_id != owner_id:
            return None
        try:
            await transact(
                self._client,
                self._files.delete_item({"id": file_id}, expression("#owner_id = :owner", owner=owner_id)),
                self._usage.update_item({"owner_id": owner_id}, expression("ADD #bytes :change", change=-record.size)),
            )
        except TransactionCancelled as exc:
            if exc.failed(0):
                return None  # deleted meanwhile, by another request
            raise
        return record
