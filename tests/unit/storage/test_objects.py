"""Object keys and S3 ``ObjectCreated`` events: written and read in one place, as S3 writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lfusys.storage.objects import ChunkStored, MalformedEvent, chunk_key, chunks_in_event, object_created_event


def test_a_chunk_key_names_the_upload_and_the_chunk() -> None:
    assert chunk_key("abc", 7) == "uploads/abc/chunk_7"


AT = datetime(2026, 11, 30, 1, 2, 3, 456000, tzinfo=UTC)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_an_event_written_for_a_chunk_reads_back_as_that_chunk() -> None:
    event = object_created_event("lfusys", chunk_key("abc", 7), 10, 1, now=AT)

    assert chunks_in_event(event) == [ChunkStored("abc", 7, stored_at=AT)]


def test_the_trace_context_of_the_storing_request_travels_with_the_event() -> None:
    event = object_created_event("lfusys", chunk_key("abc", 7), 10, 1, TRACEPARENT, now=AT)

    assert chunks_in_event(event) == [ChunkStored("abc", 7, stored_at=AT, traceparent=TRACEPARENT)]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"eventTime": "yesterday"}, ChunkStored("abc", 1)),
        ({"eventTime": "2026-11-30T01:02:03"}, ChunkStored("abc", 1)),  # no zone: not a moment
        ({"eventTime": 12}, ChunkStored("abc", 1)),
        ({"traceparent": ["not", "text"]}, ChunkStored("abc", 1)),
    ],
)
def test_an_unreadable_time_or_trace_context_is_left_out_and_the_chunk_still_read(
    extra: dict[str, object], expected: ChunkStored
) -> None:
    record = {"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "uploads/abc/chunk_1"}}, **extra}

    assert chunks_in_event(json.dumps({"Records": [record]})) == [expected]


def test_every_record_of_an_event_is_read() -> None:
    records = [json.loads(object_created_event("b", chunk_key("abc", n), 1, n, now=AT))["Records"][0] for n in (1, 2)]

    assert chunks_in_event(json.dumps({"Records": records})) == [
        ChunkStored("abc", 1, stored_at=AT),
        ChunkStored("abc", 2, stored_at=AT),
    ]


@pytest.mark.parametrize("key", ["uploads%2Fabc%2Fchunk_3", "uploads/abc/chunk_3"])
def test_keys_are_read_url_decoded(key: str) -> None:
    body = json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": key}}}]})

    assert chunks_in_event(body) == [ChunkStored("abc", 3)]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "lfusys"}),
        object_created_event("lfusys", "files/abc/part_000001", 10, 1),
        object_created_event("lfusys", "uploads/abc/chunk_0", 10, 1),
        object_created_event("lfusys", "uploads/../chunk_1", 10, 1),
        object_created_event("lfusys", "uploads/abc/chunk_1/x", 10, 1),
        json.dumps(
            {"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"object": {"key": "uploads/a/chunk_1"}}}]}
        ),
        json.dumps({"Records": []}),
    ],
)
def test_test_events_other_keys_and_other_event_names_name_no_chunk(body: str) -> None:
    assert chunks_in_event(body) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '"a string"',
        '{"Records": 5}',
        '{"Records": [{"s3": {}}]}',
        '{"Records": [{"eventName": "ObjectCreated:Put"}]}',
        '{"Records": ["x"]}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_anything_else_is_malformed(body: str) -> None:
    with pytest.raises(MalformedEvent):
        chunks_in_event(body)
