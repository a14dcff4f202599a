"""What every DynamoDB store needs: times as sortable text, conditional writes that report failure as
``False``, transactions whose cancellation says which condition failed, and paged queries.

Conditions and updates are written as DynamoDB expressions; every attribute name goes through
``#name`` placeholders (many, like ``status``, are reserved words) and every value through
``:value`` placeholders, made here from plain Python values.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lfusys.storage.aws.clients import error_code
from lfusys.storage.aws.items import from_item, to_item, to_value

if TYPE_CHECKING:  # the client types are stubs, installed for development only
    from types_aiobotocore_dynamodb import DynamoDBClient


def stamp(moment: datetime) -> str:
    """A time as fixed-width UTC text, so text order is time order (index sort keys compare it)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def unstamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


class TransactionCancelled(Exception):
    """A transaction was refused; ``reasons`` has one code per item, in order (``"None"`` where the
    item's own condition held)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons

    def failed(self, index: int) -> bool:
        """Whether the condition of item ``index`` is what failed."""
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


@dataclass(frozen=True)
class Expression:
    """An update or condition expression with its placeholders (``#a`` names, ``:v`` values)."""

    text: str
    names: Mapping[str, str]
    values: Mapping[str, Any]


def expression(text: str, **values: Any) -> Expression:
    """``text`` with every ``#word`` standing for the attribute ``word`` and every ``:word`` for
    ``values["word"]``."""
    names = {token: token[1:] for token in _tokens(text, "#")}
    return Expression(text, names, {f":{name}": value for name, value in values.items()})


def _tokens(text: str, sigil: str) -> set[str]:
    found: set[str] = set()
    for index, char in enumerate(text):
        if char == sigil and (index == 0 or not (text[index - 1].isalnum() or text[index - 1] == "_")):
            end = index + 1
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            found.add(text[index:end])
    return found


def _merge(*parts: Expression | None) -> dict[str, Any]:
    """The request fields for some expressions, their placeholders merged."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for part in parts:
        if part is not None:
            names.update(part.names)
            values.update({key: to_value(value) for key, value in part.values.items()})
    fields: dict[str, Any] = {}
    if names:
        fields["ExpressionAttributeNames"] = names
    if values:
        fields["ExpressionAttributeValues"] = values
    return fields


@dataclass(frozen=True)
class Table:
    """One table, through the process's DynamoDB client."""

    client: DynamoDBClient
    name: str

    async def get(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The item, read consistently (what the last write left, on any replica)."""
        response = await self.client.get_item(TableName=self.name, Key=to_item(key), ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None

    async def put(self, values: Mapping[str, Any], condition: Expression | None = None) -> bool:
        """Write the item if ``condition`` holds; ``False`` if it does not."""
        request: dict[str, Any] = {"TableName": self.name, "Item": to_item(values), **_merge(condition)}
        if condition is not None:
            request["ConditionExpression"] = condition.text
        try:
            await self.client.put_item(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def update(
        self, key: Mapping[str, Any], update: Expression, condition: Expression | None = None
    ) -> dict[str, Any] | None:
        """Apply ``update`` if ``condition`` holds: the item afterwards, or ``None`` if it does not hold."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": to_item(key),
            "UpdateExpression": update.text,
            "ReturnValues": "ALL_NEW",
            **_merge(update, condition),
        }
        if condition is not None:
            request["ConditionExpression"] = condition.text
        try:
            response = await self.client.update_item(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return from_item(response.get("Attributes", {}))

    async def delete(self, key: Mapping[str, Any]) -> None:
        await self.client.delete_item(TableName=self.name, Key=to_item(key))

    async def query(
        self,
        key_condition: Expression,
        *,
        index: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        page_size: int | None = None,
        filter_by: Expression | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The items of a key range in sort-key order, up to ``limit``, fetched ``page_size`` at a time.
        Table queries read consistently; an index is eventually consistent (DynamoDB allows no more)."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": key_condition.text,
            "ScanIndexForward": not newest_first,
            **_merge(key_condition, filter_by),
        }
        if filter_by is not None:
            request["FilterExpression"] = filter_by.text
        if index is None:
            request["ConsistentRead"] = True
        else:
            request["IndexName"] = index
        given = 0
        while True:
            wanted = page_size or limit
            if wanted is not None:
                request["Limit"] = wanted if filter_by is not None or limit is None else min(wanted, limit - given)
            response = await self.client.query(**request)
            for item in response.get("Items", []):
                yield from_item(item)
                given += 1
                if limit is not None and given >= limit:
                    return
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def put_item(self, values: Mapping[str, Any], condition: Expression | None = None) -> dict[str, Any]:
        """A ``Put`` for :func:`transact`."""
        put: dict[str, Any] = {"TableName": self.name, "Item": to_item(values), **_merge(condition)}
        if condition is not None:
            put["ConditionExpression"] = condition.text
        return {"Put": put}

    def update_item(
        self, key: Mapping[str, Any], update: Expression, condition: Expression | None = None
    ) -> dict[str, Any]:
        """An ``Update`` for :func:`transact`."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": to_item(key),
            "UpdateExpression": update.text,
            **_merge(update, condition),
        }
        if condition is not None:
            request["ConditionExpression"] = condition.text
        return {"Update": request}

    def delete_item(self, key: Mapping[str, Any], condition: Expression | None = None) -> dict[str, Any]:
        """A ``Delete`` for :func:`transact`."""
        request: dict[str, Any] = {"TableName": self.name, "Key": to_item(key), **_merge(condition)}
        if condition is not None:
            request["ConditionExpression"] = condition.text
        return {"Delete": request}


_CONFLICT_ATTEMPTS = 5


async def transact(client: DynamoDBClient, *items: dict[str, Any]) -> None:
    """Write ``items`` (made by :class:`Table`) all or none; :class:`TransactionCancelled` if a
    condition failed.

    A transaction that collided with another one on the same item (``TransactionConflict``, which
    botocore's retries do not cover) is tried again a few times after a short random pause.
    """
    for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
        try:
            await client.transact_write_items(TransactItems=list(items))  # type: ignore[arg-type]
            return
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])]
            if "TransactionConflict" not in reasons or attempt == _CONFLICT_ATTEMPTS:
                raise TransactionCancelled(reasons) from None
        await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not secrecy
