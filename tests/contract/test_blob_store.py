"""The behaviour every BlobStore adapter must have."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import pytest

from lfusys.storage.ports import (
    ByteRange,
    ChunkConflict,
    ChunkHashMismatch,
    ChunkMissing,
    ChunkSizeMismatch,
    ChunkWrongSize,
)
from tests.contract.conftest import BlobBackend
from tests.support import chunks_of, sha256_hex

UPLOAD = "u0123456789abcdef"


async def pieces(data: bytes, size: int = 3000) -> AsyncIterator[bytes]:
    for chunk in chunks_of(data, size):
        yield chunk


async def failing_after(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise ConnectionResetError("client went away")


async def put(backend: BlobBackend, n: int, data: bytes, sha256: str | None = None, size: int | None = None) -> bool:
    return await backend.store.put_chunk(
        UPLOAD, n, pieces(data), len(data) if size is None else size, sha256 or sha256_hex(data)
    )


async def read_all(backend: BlobBackend, file_id: str, byte_range: ByteRange | None = None) -> bytes:
    return b"".join([block async for block in backend.store.read_file(file_id, byte_range)])


async def test_a_stored_chunk_is_listed_hashed_and_announced(blob_backend: BlobBackend) -> None:
    data = os.urandom(5000)

    assert await put(blob_backend, 2, data) is True

    assert await blob_backend.store.list_chunks(UPLOAD) == [2]
    assert await blob_backend.store.chunk_sha256(UPLOAD, 2) == sha256_hex(data)
    (event,) = blob_backend.events
    (record,) = json.loads(event)["Records"]
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["object"]["key"] == f"uploads/{UPLOAD}/chunk_2"
    assert record["s3"]["object"]["size"] == 5000


async def test_storing_the_same_chunk_again_is_harmless_and_announced_again(blob_backend: BlobBackend) -> None:
    data = os.urandom(5000)
    await put(blob_backend, 1, data)

    assert await put(blob_backend, 1, data) is False

    # The repeat's event makes good a first event that was lost.
    keys = [json.loads(event)["Records"][0]["s3"]["object"]["key"] for event in blob_backend.events]
    assert keys == [f"uploads/{UPLOAD}/chunk_1"] * 2
    assert await blob_backend.store.chunk_sha256(UPLOAD, 1) == sha256_hex(data)


async def test_different_bytes_for_a_stored_chunk_are_a_conflict(blob_backend: BlobBackend) -> None:
    original = os.urandom(5000)
    await put(blob_backend, 1, original)

    with pytest.raises(ChunkConflict):
        await put(blob_backend, 1, os.urandom(5000))

    assert await blob_backend.store.chunk_sha256(UPLOAD, 1) == sha256_hex(original)


@pytest.mark.parametrize(("declared", "too_large"), [(4999, True), (5001, False)])
async def test_a_body_of_the_wrong_length_stores_nothing(
    blob_backend: BlobBackend, declared: int, too_large: bool
) -> None:
    data = os.urandom(5000)

    with pytest.raises(ChunkSizeMismatch) as raised:
        await put(blob_backend, 1, data, size=declared)

    assert raised.value.too_large is too_large
    assert await blob_backend.store.list_chunks(UPLOAD) == []
    assert blob_backend.events == []


async def test_a_body_with_the_wrong_hash_stores_nothing(blob_backend: BlobBackend) -> None:
    data = os.urandom(5000)

    with pytest.raises(ChunkHashMismatch) as raised:
        await put(blob_backend, 1, data, sha256="0" * 64)

    assert raised.value.actual == sha256_hex(data)
    assert await blob_backend.store.list_chunks(UPLOAD) == []
    assert blob_backend.events == []


async def test_a_body_that_breaks_off_stores_nothing(blob_backend: BlobBackend) -> None:
    data = os.urandom(5000)

    with pytest.raises(ConnectionResetError):
        await blob_backend.store.put_chunk(UPLOAD, 1, failing_after(data[:100]), 5000, sha256_hex(data))

    assert await blob_backend.store.list_chunks(UPLOAD) == []
    assert blob_backend.events == []


async def test_concurrent_writers_of_one_chunk_leave_one_whole_chunk(blob_backend: BlobBackend) -> None:
    data = os.urandom(3 * 1024 * 1024)

    results = await asyncio.gather(*(put(blob_backend, 1, data) for _ in range(4)))

    assert sorted(results) == [False, False, False, True]
    assert await blob_backend.store.chunk_sha256(UPLOAD, 1) == sha256_hex(data)
    assert len(blob_backend.events) == 4


async def test_assembly_joins_chunks_in_order_and_is_idempotent(blob_backend: BlobBackend) -> None:
    parts = [os.urandom(4096), os.urandom(4096), os.urandom(1000)]
    for n, part in reversed(list(enumerate(parts, start=1))):
        await put(blob_backend, n, part)

    size = await blob_backend.store.assemble(UPLOAD, "file1", 4096, 9192)
    again = await blob_backend.store.assemble(UPLOAD, "file1", 4096, 9192)

    assert size == again == 9192
    assert await blob_backend.store.file_size("file1") == 9192
    assert await read_all(blob_backend, "file1") == b"".join(parts)


async def test_assembly_with_a_missing_chunk_fails_and_makes_no_file(blob_backend: BlobBackend) -> None:
    await put(blob_backend, 1, os.urandom(4096))
    await put(blob_backend, 3, os.urandom(10))

    with pytest.raises(ChunkMissing) as raised:
        await blob_backend.store.assemble(UPLOAD, "file1", 4096, 8202)

    assert raised.value.n == 2
    assert await blob_backend.store.file_size("file1") is None


@pytest.mark.parametrize(("sizes", "wrong"), [([4096, 4000, 100], 2), ([4096, 4096, 99], 3), ([4097, 4096, 100], 1)])
async def test_assembly_with_a_chunk_of_the_wrong_size_fails_and_makes_no_file(
    blob_backend: BlobBackend, sizes: list[int], wrong: int
) -> None:
    for n, size in enumerate(sizes, start=1):
        await put(blob_backend, n, os.urandom(size))

    with pytest.raises(ChunkWrongSize) as raised:
        await blob_backend.store.assemble(UPLOAD, "file1", 4096, 2 * 4096 + 100)

    assert raised.value.n == wrong
    assert await blob_backend.store.file_size("file1") is None


async def test_hashing_a_chunk_that_is_not_stored_says_which(blob_backend: BlobBackend) -> None:
    with pytest.raises(ChunkMissing) as raised:
        await blob_backend.store.chunk_sha256(UPLOAD, 7)

    assert raised.value.n == 7


async def test_one_chunk_can_be_deleted(blob_backend: BlobBackend) -> None:
    await put(blob_backend, 1, b"one")
    await put(blob_backend, 2, b"two")

    await blob_backend.store.delete_chunk(UPLOAD, 1)
    await blob_backend.store.delete_chunk(UPLOAD, 1)  # already gone: harmless
    await blob_backend.store.delete_chunk("never-existed", 1)

    assert await blob_backend.store.list_chunks(UPLOAD) == [2]


@pytest.mark.parametrize(
    ("start", "end"), [(0, 0), (0, 4095), (4095, 4096), (100, 9000), (8191, 9191), (0, 9191), (9191, 9191)]
)
async def test_ranges_read_across_chunk_boundaries(blob_backend: BlobBackend, start: int, end: int) -> None:
    data = os.urandom(9192)
    for n, part in enumerate(chunks_of(data, 4096), start=1):
        await put(blob_backend, n, part)
    await blob_backend.store.assemble(UPLOAD, "file1", 4096, 9192)

    assert await read_all(blob_backend, "file1", ByteRange(start, end)) == data[start : end + 1]


async def test_deleting_uploads_and_files(blob_backend: BlobBackend) -> None:
    await put(blob_backend, 1, os.urandom(100))
    other = "another-upload"
    await blob_backend.store.put_chunk(other, 1, pieces(b"x"), 1, sha256_hex(b"x"))
    await blob_backend.store.assemble(other, "file2", 1, 1)
    assert await blob_backend.store.upload_prefixes() == sorted([UPLOAD, other])

    await blob_backend.store.delete_upload(UPLOAD)
    await blob_backend.store.delete_upload("never-existed")
    await blob_backend.store.delete_file("file2")
    await blob_backend.store.delete_file("never-existed")

    assert await blob_backend.store.list_chunks(UPLOAD) == []
    assert await blob_backend.store.file_size("file2") is None
    assert UPLOAD not in await blob_backend.store.upload_prefixes()


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "", "x" * 65, "dot.dot"])
async def test_ids_that_could_escape_the_store_are_refused(blob_backend: BlobBackend, bad_id: str) -> None:
    with pytest.raises(ValueError, match="invalid object id"):
        await blob_backend.store.put_chunk(bad_id, 1, pieces(b"x"), 1, sha256_hex(b"x"))
    with pytest.raises(ValueError, match="invalid object id"):
        await blob_backend.store.file_size(bad_id)
