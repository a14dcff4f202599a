"""Reading S3 event notifications (from S3 via SQS, or from the local blob store)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_plus

import msgspec

_CHUNK_KEY = re.compile(r"^uploads/([A-Za-z0-9_-]{1,64})/chunk_([1-9][0-9]{0,5})$")


class MalformedEvent(ValueError):
    """The message is not an S3 event notification; it is left for the dead-letter queue."""


class ChunkStored(msgspec.Struct, frozen=True):
    upload_id: str
    n: int


def chunks_in_event(body: str) -> list[ChunkStored]:
    """The chunk objects an event reports as created. Test events and other keys yield nothing."""
    try:
        message: Any = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise MalformedEvent("not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent("no Records list")
    stored: list[ChunkStored] = []
    for record in records:
        try:
            name = record["eventName"]
            # Keys arrive URL-encoded, in slightly different ways depending on the S3 implementation.
            key = unquote_plus(record["s3"]["object"]["key"])
        except (KeyError, TypeError):
            raise MalformedEvent("record without eventName or s3.object.key") from None
        if not isinstance(name, str) or not name.startswith("ObjectCreated:"):
            continue
        match = _CHUNK_KEY.match(key)
        if match:
            stored.append(ChunkStored(upload_id=match.group(1), n=int(match.group(2))))
    return stored
