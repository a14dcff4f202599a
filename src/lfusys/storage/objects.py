"""Object keys and the S3 event that announces a stored chunk: how both are written and read, in one place.

Every backend names objects the same way (``uploads/{upload_id}/chunk_{n}``, ``files/{file_id}``), and
every backend's storage events look like S3's ``ObjectCreated`` notifications: S3 sends them itself;
the local and memory stores send the same JSON to their queues.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import msgspec

UPLOADS_PREFIX = "uploads/"
FILES_PREFIX = "files/"
_CHUNK_KEY = re.compile(r"^uploads/([A-Za-z0-9_-]{1,64})/chunk_([1-9][0-9]{0,5})$")


_OBJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def checked_id(identifier: str) -> str:
    """An upload or file id fit for a key: ids are made by the server, and refusing anything else
    keeps every key (and every local path) where it belongs."""
    if not _OBJECT_ID.match(identifier):
        raise ValueError(f"invalid object id {identifier!r}")
    return identifier


def upload_prefix(upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/"


def chunk_key(upload_id: str, n: int) -> str:
    return f"{upload_prefix(upload_id)}chunk_{n}"


def file_key(file_id: str) -> str:
    return f"{FILES_PREFIX}{file_id}"


class ChunkStored(msgspec.Struct, frozen=True):
    upload_id: str
    n: int
    stored_at: datetime | None = None
    """When the object was created (the event's ``eventTime``)."""
    traceparent: str | None = None
    """The W3C trace context of the request that stored the chunk, when the event carries one (the
    local and memory stores' events do; S3's keep it in the object's metadata instead)."""

    @property
    def chunk(self) -> tuple[str, int]:
        """Which chunk the event is about (two events about one chunk may differ in time and trace)."""
        return (self.upload_id, self.n)


class MalformedEvent(ValueError):
    """The message is not an S3 event notification; it is left for the dead-letter queue."""


def object_created_event(
    bucket: str, key: str, size: int, sequencer: int, traceparent: str | None = None, now: datetime | None = None
) -> str:
    """The JSON S3 sends to SQS for ``s3:ObjectCreated:Put`` (the fields the worker reads, and a few
    more), with the storing request's ``traceparent`` beside them when it is traced."""
    moment = now or datetime.now(UTC)
    record = {
        "eventVersion": "2.1",
        "eventSource": "lfusys:local",
        "awsRegion": "local",
        "eventTime": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "sequencer": f"{sequencer:016X}"},
        },
    }
    if traceparent is not None:
        record["traceparent"] = traceparent
    return json.dumps({"Records": [record]})


def chunks_in_event(body: str) -> list[ChunkStored]:
    """The chunk objects an event reports as created. Test events and other keys yield nothing."""
    try:
        message: Any = json.loads(body)
    except (json.JSONDecodeError, RecursionError) as exc:
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
            traceparent = record.get("traceparent")
            stored.append(
                ChunkStored(
                    upload_id=match.group(1),
                    n=int(match.group(2)),
                    stored_at=_event_time(record.get("eventTime")),
                    traceparent=traceparent if isinstance(traceparent, str) else None,
                )
            )
    return stored


def _event_time(value: object) -> datetime | None:
    """S3's ``eventTime`` (``2026-11-30T01:02:03.456Z``), or None if it is missing or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
