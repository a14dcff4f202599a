"""What the S3 blob store and the SQS event queue do against the emulator, beyond the contract suites:
ten thousand chunks and more, real part sizes, S3's own checksum check, presigned downloads, and the
queue's whole-second limits, dead letters and cancelled receives.

What is stored is checked where an operator would look: with plain S3 calls on the bucket.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import cast

import httpx
import pytest
import pytest_asyncio
from botocore.exceptions import ClientError

from lfusys.files.ranges import ByteRange
from lfusys.files.service import content_disposition
from lfusys.storage.aws.blobs import S3BlobStore
from lfusys.storage.aws.clients import AwsClients, error_code, open_clients
from lfusys.storage.aws.migrate import create_resources
from lfusys.storage.aws.queue import SqsEventQueue
from lfusys.storage.aws.resources import Names
from lfusys.storage.objects import chunk_key, chunks_in_event, file_key, upload_prefix
from lfusys.storage.ports import (
    ChunkConflict,
    ChunkHashMismatch,
    ChunkMissing,
    ChunkSizeMismatch,
    ChunkSpan,
    ChunkWrongSize,
    QueueMessage,
)
from tests.support import chunks_of, make_settings, sha256_hex

pytestmark = pytest.mark.asyncio(loop_scope="module")

PART = 5 * 1024 * 1024


@dataclass(frozen=True)
class Aws:
    clients: AwsClients
    blobs: S3BlobStore
    queue: SqsEventQueue

    @property
    def bucket(self) -> str:
        return self.clients.names.bucket


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def aws(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Aws]:
    """The store and the queue over resources of this module's own, as ``lfusys migrate`` creates them."""
    settings = make_settings(tmp_path_factory.mktemp("aws") / "data", backend="aws")
    async with open_clients(settings.aws) as clients:
        await create_resources(clients, settings)
        queue = await SqsEventQueue.open(clients)
        await announced(queue)  # the test event S3 sends when the notification is set up
        yield Aws(clients, S3BlobStore(clients, copy_parallelism=4, on_object_created=queue.send), queue)


def new_id() -> str:
    return uuid.uuid4().hex


async def pieces(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def put(aws: Aws, upload_id: str, n: int, data: bytes, *, size: int | None = None, sha256: str = "") -> bool:
    declared = len(data) if size is None else size
    return await aws.blobs.put_chunk(upload_id, n, pieces(data), declared, sha256 or sha256_hex(data))


async def announced(queue: SqsEventQueue) -> list[tuple[str, int]]:
    """The chunks announced on the queue since this was last asked (taken off the queue)."""
    stored: list[tuple[str, int]] = []
    while messages := await queue.receive(10, 0.3, 3600):
        for message in messages:
            stored += [event.chunk for event in chunks_in_event(message.body)]
        await queue.delete(*(message.receipt for message in messages))
    return stored


async def is_stored(aws: Aws, key: str) -> bool:
    try:
        await aws.clients.s3.head_object(Bucket=aws.bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) == "404":
            return False
        raise
    return True


async def read_all(aws: Aws, file_id: str, byte_range: ByteRange | None = None) -> bytes:
    return b"".join([piece async for piece in aws.blobs.read_file(file_id, byte_range)])


def checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# --- chunks ------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_ten_thousand_and_one_chunks_are_listed_and_all_deleted(aws: Aws) -> None:
    # A bucket of its own, without event notifications: ten thousand puts would flood the queue.
    quiet = replace(aws.clients, names=Names(f"{aws.clients.names.prefix}-many"))
    await quiet.s3.create_bucket(Bucket=quiet.names.bucket)
    blobs = S3BlobStore(quiet, copy_parallelism=4, on_object_created=aws.queue.send)
    upload_id, neighbour = new_id(), new_id()
    slots = asyncio.Semaphore(64)

    async def store(key: str) -> None:
        async with slots:
            await quiet.s3.put_object(Bucket=quiet.names.bucket, Key=key, Body=b"x")

    keys = [chunk_key(upload_id, n) for n in range(1, 10_002)]
    await asyncio.gather(*map(store, [*keys, f"{upload_prefix(upload_id)}notes.txt", chunk_key(neighbour, 1)]))

    assert await blobs.list_chunks(upload_id) == list(range(1, 10_002))  # notes.txt is no chunk
    await blobs.delete_upload(upload_id)

    left = await quiet.s3.list_objects_v2(Bucket=quiet.names.bucket, Prefix=upload_prefix(upload_id))
    assert left["KeyCount"] == 0
    assert await blobs.list_chunks(neighbour) == [1]


async def test_storing_a_chunk_again_is_a_repeat_and_announced_again(aws: Aws) -> None:
    upload_id, data = new_id(), os.urandom(5000)
    await announced(aws.queue)

    assert await put(aws, upload_id, 1, data) is True
    assert await announced(aws.queue) == [(upload_id, 1)]  # sent by S3
    assert await put(aws, upload_id, 1, data) is False
    assert await announced(aws.queue) == [(upload_id, 1)]  # sent by the store: S3 sends none
    assert await aws.blobs.chunk_sha256(upload_id, 1) == sha256_hex(data)


async def test_other_bytes_for_a_stored_chunk_are_a_conflict(aws: Aws) -> None:
    upload_id, original = new_id(), os.urandom(5000)
    await put(aws, upload_id, 1, original)

    with pytest.raises(ChunkConflict):
        await put(aws, upload_id, 1, os.urandom(5000))

    assert await aws.blobs.chunk_sha256(upload_id, 1) == sha256_hex(original)


@pytest.mark.parametrize(
    ("declared", "sha256", "refusal"),
    [(4999, "", ChunkSizeMismatch), (5001, "", ChunkSizeMismatch), (5000, "0" * 64, ChunkHashMismatch)],
    ids=["too long", "too short", "wrong hash"],
)
async def test_a_refused_body_stores_nothing_and_announces_nothing(
    aws: Aws, declared: int, sha256: str, refusal: type[Exception]
) -> None:
    upload_id = new_id()
    await announced(aws.queue)

    with pytest.raises(refusal):
        await put(aws, upload_id, 1, os.urandom(5000), size=declared, sha256=sha256)

    assert not await is_stored(aws, chunk_key(upload_id, 1))
    assert await announced(aws.queue) == []


async def test_s3_itself_refuses_bytes_that_do_not_match_their_checksum(aws: Aws) -> None:
    key = chunk_key(new_id(), 1)

    with pytest.raises(ClientError) as refused:
        await aws.clients.s3.put_object(Bucket=aws.bucket, Key=key, Body=b"stored", ChecksumSHA256=checksum(b"other"))

    assert error_code(refused.value) == "BadDigest"
    assert not await is_stored(aws, key)


async def test_bytes_changed_after_the_store_checked_them_are_refused_by_s3(aws: Aws) -> None:
    upload_id, data = new_id(), os.urandom(10_000)

    async def changing() -> AsyncIterator[bytes]:
        # A buffer its producer reuses (no body should do this): what is sent is not what was checked.
        first = bytearray(data[:5000])
        yield cast(bytes, first)  # checked, then held back until the next piece arrives...
        first[0] ^= 0xFF  # ...and changed before it is sent: only S3 can notice
        yield data[5000:]

    with pytest.raises(ChunkHashMismatch):
        await aws.blobs.put_chunk(upload_id, 1, changing(), len(data), sha256_hex(data))

    assert not await is_stored(aws, chunk_key(upload_id, 1))


async def test_a_chunk_stored_without_a_checksum_is_hashed_from_its_bytes(aws: Aws) -> None:
    upload_id, data = new_id(), os.urandom(3 * 1024 * 1024)
    await aws.clients.s3.put_object(Bucket=aws.bucket, Key=chunk_key(upload_id, 4), Body=data)

    assert await aws.blobs.chunk_sha256(upload_id, 4) == sha256_hex(data)
    with pytest.raises(ChunkMissing):
        await aws.blobs.chunk_sha256(upload_id, 5)


# --- assembly and files ------------------------------------------------------------------------


async def test_three_parts_of_5_mib_and_a_shorter_last_make_the_file(aws: Aws) -> None:
    upload_id, file_id = new_id(), new_id()
    data = os.urandom(3 * PART + 1000)
    chunks = chunks_of(data, PART)
    for n, chunk in enumerate(chunks, start=1):
        assert await put(aws, upload_id, n, chunk) is True

    assembly = await aws.blobs.start_assembly(file_id)
    spans = [ChunkSpan(n, len(chunk)) for n, chunk in enumerate(chunks, start=1)]
    parts = await aws.blobs.copy_parts(file_id, assembly, upload_id, spans)
    size = await aws.blobs.complete_assembly(file_id, assembly, parts)

    assert [part.number for part in parts] == [1, 2, 3, 4]
    assert size == len(data)
    stored = await aws.clients.s3.get_object(Bucket=aws.bucket, Key=file_key(file_id))
    assert await stored["Body"].read() == data
    for start, end in [(0, 0), (PART - 1, PART), (PART - 10, 2 * PART + 10), (len(data) - 1, len(data) - 1)]:
        assert await read_all(aws, file_id, ByteRange(start, end)) == data[start : end + 1]
    # Done before: completing again reports the file.
    assert await aws.blobs.complete_assembly(file_id, assembly, parts) == len(data)


async def test_a_one_chunk_file_is_a_plain_copy_of_its_chunk(aws: Aws) -> None:
    upload_id, file_id, data = new_id(), new_id(), os.urandom(1000)
    await put(aws, upload_id, 1, data)

    assert await aws.blobs.copy_chunk_as_file(file_id, upload_id, ChunkSpan(1, 1000)) == 1000

    head = await aws.clients.s3.head_object(Bucket=aws.bucket, Key=file_key(file_id), ChecksumMode="ENABLED")
    assert "-" not in head["ETag"]  # not a multipart object
    assert head.get("ChecksumSHA256") == checksum(data)
    assert await read_all(aws, file_id) == data
    with pytest.raises(ChunkWrongSize):
        await aws.blobs.copy_chunk_as_file(new_id(), upload_id, ChunkSpan(1, 999))
    with pytest.raises(ChunkMissing):
        await aws.blobs.copy_chunk_as_file(new_id(), upload_id, ChunkSpan(2, 1000))


async def test_a_presigned_url_serves_the_file_by_its_name_and_nothing_else(aws: Aws) -> None:
    upload_id, file_id, data = new_id(), new_id(), os.urandom(2000)
    await put(aws, upload_id, 1, data)
    await aws.blobs.copy_chunk_as_file(file_id, upload_id, ChunkSpan(1, 2000))
    name = 'Résumé 東京 "final" 📄.pdf'

    url = await aws.blobs.download_url(file_id, name, "application/pdf", datetime.now(UTC) + timedelta(minutes=5))
    short_lived = await aws.blobs.download_url(file_id, name, "application/pdf", datetime.now(UTC))

    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(url)
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["content-disposition"] == content_disposition(name)
        assert response.headers["content-type"] == "application/pdf"
        assert (await http.get(url.replace("attachment", "inline"))).status_code == 403
        assert (await http.get(url.replace(file_id, new_id()))).status_code == 403
        await asyncio.sleep(2.1)  # it lived one second
        assert (await http.get(short_lived)).status_code == 403


async def test_a_deleted_file_is_gone(aws: Aws) -> None:
    upload_id, file_id = new_id(), new_id()
    await put(aws, upload_id, 1, b"kept")
    await aws.blobs.copy_chunk_as_file(file_id, upload_id, ChunkSpan(1, 4))

    await aws.blobs.delete_file(file_id)

    assert await aws.blobs.file_size(file_id) is None
    with pytest.raises(FileNotFoundError):
        await read_all(aws, file_id)


# --- the event queue ---------------------------------------------------------------------------


async def test_a_wait_shorter_than_a_second_still_finds_a_message_sent_meanwhile(aws: Aws) -> None:
    await announced(aws.queue)

    async def send_soon() -> None:
        await asyncio.sleep(0.1)
        await aws.queue.send("meanwhile")

    sending = asyncio.create_task(send_soon())
    messages = await aws.queue.receive(10, 0.5, 30)
    await sending

    assert [message.body for message in messages] == ["meanwhile"]
    await aws.queue.delete(messages[0].receipt)


async def test_a_receive_cancelled_while_its_answer_is_on_the_way_gives_its_messages_back(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    await announced(aws.queue)
    await aws.queue.send("in flight")
    took = asyncio.Event()
    take = aws.queue._receive_message

    async def slow_to_answer(count: int, wait: int, visibility: int) -> list[QueueMessage]:
        # SQS has hidden the messages for this request; its answer is still on the way.
        messages = await take(count, wait, visibility)
        took.set()
        await asyncio.sleep(0.5)
        return messages

    monkeypatch.setattr(aws.queue, "_receive_message", slow_to_answer)
    receiving = asyncio.create_task(aws.queue.receive(10, 1, 30))
    await took.wait()
    receiving.cancel()  # a worker stopping
    with pytest.raises(asyncio.CancelledError):
        await receiving
    monkeypatch.undo()

    (message,) = await aws.queue.receive(10, 0, 30)
    assert message.body == "in flight"
    assert message.receive_count == 2
    await aws.queue.delete(message.receipt)


async def test_dead_letters_are_listed_beyond_a_batch_of_ten_without_being_consumed(aws: Aws) -> None:
    dead_letter_queue = await aws.clients.sqs.get_queue_url(QueueName=aws.clients.names.dead_letter_queue)
    bodies = {f"given up {i}" for i in range(15)}
    for body in sorted(bodies):
        await aws.clients.sqs.send_message(QueueUrl=dead_letter_queue["QueueUrl"], MessageBody=body)

    first = await aws.queue.dead_letters(100)
    again = await aws.queue.dead_letters(100)

    assert {letter.body for letter in first} == {letter.body for letter in again} == bodies
    assert [letter.dead_at for letter in first] == sorted(letter.dead_at for letter in first)
    assert len(await aws.queue.dead_letters(4)) == 4
