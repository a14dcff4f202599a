"""The behaviour every BlobStore adapter must have."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from lfusys.files.ranges import ByteRange
from lfusys.storage.ports import (
    AssemblyLost,
    Backend,
    ChunkConflict,
    ChunkHashMismatch,
    ChunkMissing,
    ChunkSizeMismatch,
    ChunkSpan,
    ChunkWrongSize,
    PartSource,
    Piece,
    group_pieces,
)
from tests.contract.conftest import announced
from tests.support import FakeClock, chunks_of, sha256_hex

UPLOAD = "u0123456789abcdef"
NEXT_UPLOAD = "v0123456789abcdef"
PART = 5 * 1024 * 1024


async def pieces(data: bytes, size: int = 3000) -> AsyncIterator[bytes]:
    for chunk in chunks_of(data, size):
        yield chunk


async def failing_after(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise ConnectionResetError("client went away")


async def put(backend: Backend, n: int, data: bytes, sha256: str | None = None, size: int | None = None) -> bool:
    return await backend.blobs.put_chunk(
        UPLOAD, n, pieces(data), len(data) if size is None else size, sha256 or sha256_hex(data)
    )


async def read_all(backend: Backend, file_id: str, byte_range: ByteRange | None = None) -> bytes:
    return b"".join([block async for block in backend.blobs.read_file(file_id, byte_range)])


async def test_a_stored_chunk_is_listed_hashed_and_announced(backend: Backend) -> None:
    data = os.urandom(5000)

    assert await put(backend, 2, data) is True

    assert await backend.blobs.list_chunks(UPLOAD) == [2]
    assert await backend.blobs.chunk_sha256(UPLOAD, 2) == sha256_hex(data)
    (event,) = await announced(backend)
    (record,) = json.loads(event)["Records"]
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["object"]["key"] == f"uploads/{UPLOAD}/chunk_2"
    assert record["s3"]["object"]["size"] == 5000


async def test_a_chunk_whose_digest_the_caller_computed_is_stored_and_announced_the_same(backend: Backend) -> None:
    data = os.urandom(5000)

    stored = await backend.blobs.put_chunk(UPLOAD, 3, pieces(data), len(data), sha256_hex(data), digest_known=True)

    assert stored is True
    assert await backend.blobs.chunk_sha256(UPLOAD, 3) == sha256_hex(data)
    assert len(await announced(backend)) == 1
    assert await put(backend, 3, data) is False, "a repeat, checked the usual way"
    with pytest.raises(ChunkSizeMismatch):  # the length is still checked
        await backend.blobs.put_chunk(UPLOAD, 4, pieces(data), len(data) + 1, sha256_hex(data), digest_known=True)
    assert await backend.blobs.list_chunks(UPLOAD) == [3]


async def test_storing_the_same_chunk_again_is_harmless_and_announced_again(backend: Backend) -> None:
    data = os.urandom(5000)
    await put(backend, 1, data)

    assert await put(backend, 1, data) is False

    # The repeat's event makes good a first event that was lost.
    keys = [json.loads(event)["Records"][0]["s3"]["object"]["key"] for event in await announced(backend)]
    assert keys == [f"uploads/{UPLOAD}/chunk_1"] * 2
    assert await backend.blobs.chunk_sha256(UPLOAD, 1) == sha256_hex(data)


async def test_different_bytes_for_a_stored_chunk_are_a_conflict(backend: Backend) -> None:
    original = os.urandom(5000)
    await put(backend, 1, original)

    with pytest.raises(ChunkConflict):
        await put(backend, 1, os.urandom(5000))

    assert await backend.blobs.chunk_sha256(UPLOAD, 1) == sha256_hex(original)


@pytest.mark.parametrize(("declared", "too_large"), [(4999, True), (5001, False)])
async def test_a_body_of_the_wrong_length_stores_nothing(backend: Backend, declared: int, too_large: bool) -> None:
    data = os.urandom(5000)

    with pytest.raises(ChunkSizeMismatch) as raised:
        await put(backend, 1, data, size=declared)

    assert raised.value.too_large is too_large
    assert await backend.blobs.list_chunks(UPLOAD) == []
    assert await announced(backend) == []


async def test_a_body_with_the_wrong_hash_stores_nothing(backend: Backend) -> None:
    data = os.urandom(5000)

    with pytest.raises(ChunkHashMismatch) as raised:
        await put(backend, 1, data, sha256="0" * 64)

    assert raised.value.actual == sha256_hex(data)
    assert await backend.blobs.list_chunks(UPLOAD) == []
    assert await announced(backend) == []


async def test_a_body_that_breaks_off_stores_nothing(backend: Backend) -> None:
    data = os.urandom(5000)

    with pytest.raises(ConnectionResetError):
        await backend.blobs.put_chunk(UPLOAD, 1, failing_after(data[:100]), 5000, sha256_hex(data))

    assert await backend.blobs.list_chunks(UPLOAD) == []
    assert await announced(backend) == []


async def test_concurrent_writers_of_one_chunk_leave_one_whole_chunk(backend: Backend) -> None:
    data = os.urandom(3 * 1024 * 1024)

    results = await asyncio.gather(*(put(backend, 1, data) for _ in range(4)))

    assert sorted(results) == [False, False, False, True]
    assert await backend.blobs.chunk_sha256(UPLOAD, 1) == sha256_hex(data)
    assert len(await announced(backend)) == 4


def spans(chunk_size: int, file_size: int) -> list[ChunkSpan]:
    count = -(-file_size // chunk_size)
    return [ChunkSpan(n, min(chunk_size, file_size - (n - 1) * chunk_size)) for n in range(1, count + 1)]


async def assemble(backend: Backend, file_id: str, chunk_size: int, file_size: int) -> int:
    """Every step of an assembly, as the finalizer takes them."""
    assembly = await backend.blobs.start_assembly(file_id)
    parts = await backend.blobs.copy_parts(file_id, assembly, UPLOAD, spans(chunk_size, file_size))
    return await backend.blobs.complete_assembly(file_id, assembly, parts)


async def test_assembly_joins_parts_of_5_mib_in_order(backend: Backend) -> None:
    # S3 refuses parts under 5 MiB except the last: the contract is checked with real part sizes.
    data = os.urandom(3 * PART + 1000)
    for n, chunk in reversed(list(enumerate(chunks_of(data, PART), start=1))):
        await put(backend, n, chunk)
    assembly = await backend.blobs.start_assembly("file1")

    parts = await backend.blobs.copy_parts("file1", assembly, UPLOAD, spans(PART, len(data)))
    size = await backend.blobs.complete_assembly("file1", assembly, parts)

    assert [part.number for part in parts] == [1, 2, 3, 4]
    assert size == len(data)
    assert await backend.blobs.file_size("file1") == len(data)
    assert await read_all(backend, "file1") == data
    # The chunks are still there until the upload's chunks are deleted.
    assert await backend.blobs.list_chunks(UPLOAD) == [1, 2, 3, 4]


async def test_every_assembly_step_may_be_repeated(backend: Backend) -> None:
    data = os.urandom(2 * PART + 10)
    for n, chunk in enumerate(chunks_of(data, PART), start=1):
        await put(backend, n, chunk)
    assembly = await backend.blobs.start_assembly("file1")
    chunk_spans = spans(PART, len(data))

    first = await backend.blobs.copy_parts("file1", assembly, UPLOAD, chunk_spans[:2])
    # Another worker, taking over, copies part 2 again and then the rest.
    second = await backend.blobs.copy_parts("file1", assembly, UPLOAD, chunk_spans[1:])
    parts = [first[0], *second]
    size = await backend.blobs.complete_assembly("file1", assembly, parts)
    again = await backend.blobs.complete_assembly("file1", assembly, parts)

    assert size == again == len(data)
    assert await read_all(backend, "file1") == data


async def test_a_one_chunk_file_is_assembled_too(backend: Backend) -> None:
    await put(backend, 1, b"!")

    assert await assemble(backend, "file1", 1, 1) == 1
    assert await read_all(backend, "file1") == b"!"


async def test_a_one_chunk_file_is_that_chunk_copied_and_may_be_copied_again(backend: Backend) -> None:
    data = os.urandom(3000)
    await put(backend, 1, data)

    assert await backend.blobs.copy_chunk_as_file("file1", UPLOAD, ChunkSpan(1, 3000)) == 3000
    assert await backend.blobs.copy_chunk_as_file("file1", UPLOAD, ChunkSpan(1, 3000)) == 3000

    assert await backend.blobs.file_size("file1") == 3000
    assert await read_all(backend, "file1") == data
    assert await read_all(backend, "file1", ByteRange(10, 19)) == data[10:20]
    assert await backend.blobs.list_chunks(UPLOAD) == [1]


async def test_copying_a_missing_or_wrong_sized_chunk_as_a_file_fails_and_makes_no_file(backend: Backend) -> None:
    with pytest.raises(ChunkMissing) as missing:
        await backend.blobs.copy_chunk_as_file("file1", UPLOAD, ChunkSpan(1, 3))
    await put(backend, 1, b"abcd")
    with pytest.raises(ChunkWrongSize) as wrong:
        await backend.blobs.copy_chunk_as_file("file1", UPLOAD, ChunkSpan(1, 3))

    assert missing.value.n == wrong.value.n == 1
    assert await backend.blobs.file_size("file1") is None


async def test_an_aborted_assembly_is_gone_and_makes_no_file(backend: Backend) -> None:
    await put(backend, 1, b"abc")
    assembly = await backend.blobs.start_assembly("file1")
    parts = await backend.blobs.copy_parts("file1", assembly, UPLOAD, [ChunkSpan(1, 3)])

    await backend.blobs.abort_assembly("file1", assembly)
    await backend.blobs.abort_assembly("file1", assembly)  # harmless to repeat

    with pytest.raises(AssemblyLost):
        await backend.blobs.complete_assembly("file1", assembly, parts)
    with pytest.raises(AssemblyLost):
        await backend.blobs.copy_parts("file1", assembly, UPLOAD, [ChunkSpan(1, 3)])
    assert await backend.blobs.file_size("file1") is None
    assert await backend.blobs.list_chunks(UPLOAD) == [1]


async def test_an_unknown_assembly_is_lost(backend: Backend) -> None:
    await put(backend, 1, b"abc")

    with pytest.raises(AssemblyLost):
        await backend.blobs.copy_parts("file1", "0123456789abcdef", UPLOAD, [ChunkSpan(1, 3)])


async def test_assembly_with_a_missing_chunk_fails_and_makes_no_file(backend: Backend) -> None:
    await put(backend, 1, os.urandom(4096))
    await put(backend, 3, os.urandom(10))
    assembly = await backend.blobs.start_assembly("file1")

    with pytest.raises(ChunkMissing) as raised:
        await backend.blobs.copy_parts("file1", assembly, UPLOAD, spans(4096, 8202))

    assert raised.value.n == 2
    assert await backend.blobs.file_size("file1") is None


@pytest.mark.parametrize(("sizes", "wrong"), [([4096, 4000, 100], 2), ([4096, 4096, 99], 3), ([4097, 4096, 100], 1)])
async def test_assembly_with_a_chunk_of_the_wrong_size_fails_and_makes_no_file(
    backend: Backend, sizes: list[int], wrong: int
) -> None:
    for n, size in enumerate(sizes, start=1):
        await put(backend, n, os.urandom(size))
    assembly = await backend.blobs.start_assembly("file1")

    with pytest.raises(ChunkWrongSize) as raised:
        await backend.blobs.copy_parts("file1", assembly, UPLOAD, spans(4096, 2 * 4096 + 100))

    assert raised.value.n == wrong
    assert await backend.blobs.file_size("file1") is None


def one(number: int, piece: Piece) -> PartSource:
    return PartSource(number, (piece,))


async def test_an_assembly_of_pieces_of_two_uploads_reads_as_their_bytes_joined(backend: Backend) -> None:
    # The first upload ends in a small tail, joined with the next upload's first chunk into one part.
    first_chunk, tail = os.urandom(PART + 100), os.urandom(1000)
    next_chunk, last_chunk = os.urandom(PART), os.urandom(2000)
    await put(backend, 1, first_chunk)
    await backend.blobs.put_tail(UPLOAD, PART + 1100, tail)
    await backend.blobs.put_chunk(NEXT_UPLOAD, 1, pieces(next_chunk), PART, sha256_hex(next_chunk))
    await backend.blobs.put_chunk(NEXT_UPLOAD, 2, pieces(last_chunk), 2000, sha256_hex(last_chunk))
    parts = group_pieces(
        [
            Piece(UPLOAD, PART + 100, n=1),
            Piece(UPLOAD, 1000, tail_end=PART + 1100),
            Piece(NEXT_UPLOAD, PART, n=1),
            Piece(NEXT_UPLOAD, 2000, n=2),
        ]
    )
    data = first_chunk + tail + next_chunk + last_chunk
    assembly = await backend.blobs.start_assembly("file1")

    made = await backend.blobs.copy_pieces("file1", assembly, parts)
    size = await backend.blobs.complete_assembly("file1", assembly, made)

    assert [len(part.pieces) for part in parts] == [1, 2, 1]
    assert [part.number for part in made] == [1, 2, 3]
    assert size == len(data)
    assert await backend.blobs.file_size("file1") == len(data)
    assert await read_all(backend, "file1") == data
    first_end, second_end = PART + 100, 2 * PART + 1100
    for start, end in [
        (first_end - 10, first_end + 10),
        (second_end - 10, second_end + 10),
        (first_end - 1, second_end),
        (first_end, second_end - 1),
        (5, len(data) - 5),
        (second_end, len(data) - 1),
    ]:
        assert await read_all(backend, "file1", ByteRange(start, end)) == data[start : end + 1], (start, end)


async def test_a_tail_alone_is_a_part_as_it_is(backend: Backend) -> None:
    tail = os.urandom(3000)
    await backend.blobs.put_tail(UPLOAD, 3000, tail)
    assembly = await backend.blobs.start_assembly("file1")

    made = await backend.blobs.copy_pieces("file1", assembly, [one(1, Piece(UPLOAD, 3000, tail_end=3000))])

    assert await backend.blobs.complete_assembly("file1", assembly, made) == 3000
    assert await read_all(backend, "file1") == tail
    assert await read_all(backend, "file1", ByteRange(10, 19)) == tail[10:20]


async def test_making_parts_from_pieces_again_is_harmless(backend: Backend) -> None:
    first_chunk, tail, next_chunk = os.urandom(PART), os.urandom(1000), os.urandom(2000)
    await put(backend, 1, first_chunk)
    await backend.blobs.put_tail(UPLOAD, PART + 1000, tail)
    await backend.blobs.put_chunk(NEXT_UPLOAD, 1, pieces(next_chunk), 2000, sha256_hex(next_chunk))
    parts = [
        one(1, Piece(UPLOAD, PART, n=1)),
        PartSource(2, (Piece(UPLOAD, 1000, tail_end=PART + 1000), Piece(NEXT_UPLOAD, 2000, n=1))),
    ]
    assembly = await backend.blobs.start_assembly("file1")

    first = await backend.blobs.copy_pieces("file1", assembly, parts)
    # Another worker, taking over, makes every part again.
    again = await backend.blobs.copy_pieces("file1", assembly, parts)
    size = await backend.blobs.complete_assembly("file1", assembly, again)

    assert again == first
    assert size == PART + 3000
    assert await read_all(backend, "file1") == first_chunk + tail + next_chunk


@pytest.mark.parametrize(
    ("part", "missing"),
    [
        (one(1, Piece(UPLOAD, 3000, n=2)), 2),
        (one(1, Piece(UPLOAD, 10, tail_end=3010)), 0),
        (PartSource(1, (Piece(UPLOAD, 3000, n=1), Piece(UPLOAD, 10, tail_end=3010))), 0),
        (PartSource(1, (Piece(UPLOAD, 3000, n=1), Piece(UPLOAD, 3000, n=2))), 2),
        (PartSource(1, (Piece(UPLOAD, 10, tail_end=3010), Piece(UPLOAD, 3000, n=1))), 0),
    ],
    ids=["lone chunk", "lone tail", "joined tail", "joined chunk", "first of joined"],
)
async def test_a_part_with_a_missing_piece_fails_and_makes_no_file(
    backend: Backend, part: PartSource, missing: int
) -> None:
    await put(backend, 1, os.urandom(3000))
    assembly = await backend.blobs.start_assembly("file1")

    with pytest.raises(ChunkMissing) as raised:
        await backend.blobs.copy_pieces("file1", assembly, [part])

    assert raised.value.n == missing
    assert await backend.blobs.file_size("file1") is None


@pytest.mark.parametrize(
    ("part", "wrong"),
    [
        (one(1, Piece(UPLOAD, 2999, n=1)), 1),
        (one(1, Piece(UPLOAD, 11, tail_end=3010)), 0),
        (PartSource(1, (Piece(UPLOAD, 3000, n=1), Piece(UPLOAD, 9, tail_end=3010))), 0),
        (PartSource(1, (Piece(UPLOAD, 3001, n=1), Piece(UPLOAD, 10, tail_end=3010))), 1),
    ],
    ids=["lone chunk", "lone tail", "joined tail", "joined chunk"],
)
async def test_a_part_with_a_piece_of_the_wrong_size_fails_and_makes_no_file(
    backend: Backend, part: PartSource, wrong: int
) -> None:
    await put(backend, 1, os.urandom(3000))
    await backend.blobs.put_tail(UPLOAD, 3010, os.urandom(10))
    assembly = await backend.blobs.start_assembly("file1")

    with pytest.raises(ChunkWrongSize) as raised:
        await backend.blobs.copy_pieces("file1", assembly, [part])

    assert raised.value.n == wrong
    assert await backend.blobs.file_size("file1") is None


@pytest.mark.parametrize(
    "part",
    [one(1, Piece(UPLOAD, 3, n=1)), PartSource(1, (Piece(UPLOAD, 3, n=1), Piece(UPLOAD, 2, tail_end=5)))],
    ids=["lone", "joined"],
)
async def test_pieces_made_into_an_unknown_or_aborted_assembly_are_lost(backend: Backend, part: PartSource) -> None:
    await put(backend, 1, b"abc")
    await backend.blobs.put_tail(UPLOAD, 5, b"de")
    aborted = await backend.blobs.start_assembly("file1")
    await backend.blobs.abort_assembly("file1", aborted)

    with pytest.raises(AssemblyLost):
        await backend.blobs.copy_pieces("file1", "0123456789abcdef", [part])
    with pytest.raises(AssemblyLost):
        await backend.blobs.copy_pieces("file1", aborted, [part])
    assert await backend.blobs.file_size("file1") is None


async def test_hashing_a_chunk_that_is_not_stored_says_which(backend: Backend) -> None:
    with pytest.raises(ChunkMissing) as raised:
        await backend.blobs.chunk_sha256(UPLOAD, 7)

    assert raised.value.n == 7


async def test_one_chunk_can_be_deleted(backend: Backend) -> None:
    await put(backend, 1, b"one")
    await put(backend, 2, b"two")

    await backend.blobs.delete_chunk(UPLOAD, 1)
    await backend.blobs.delete_chunk(UPLOAD, 1)  # already gone: harmless
    await backend.blobs.delete_chunk("never-existed", 1)

    assert await backend.blobs.list_chunks(UPLOAD) == [2]


@pytest.mark.parametrize(
    ("start", "end"), [(0, 0), (0, 4095), (4095, 4096), (100, 9000), (8191, 9191), (0, 9191), (9191, 9191)]
)
async def test_ranges_read_across_chunk_boundaries(backend: Backend, start: int, end: int) -> None:
    data = os.urandom(9192)
    for n, part in enumerate(chunks_of(data, 4096), start=1):
        await put(backend, n, part)
    await assemble(backend, "file1", 4096, 9192)

    assert await read_all(backend, "file1", ByteRange(start, end)) == data[start : end + 1]


async def test_deleting_uploads_and_files(backend: Backend) -> None:
    await put(backend, 1, os.urandom(100))
    await put(backend, 2, os.urandom(100))
    await assemble(backend, "file2", 100, 200)

    await backend.blobs.delete_upload(UPLOAD)
    await backend.blobs.delete_upload("never-existed")
    await backend.blobs.delete_file("file2")
    await backend.blobs.delete_file("never-existed")

    assert await backend.blobs.list_chunks(UPLOAD) == []
    assert await backend.blobs.file_size("file2") is None


async def test_a_file_survives_the_deletion_of_its_chunks(backend: Backend) -> None:
    await put(backend, 1, b"kept")
    await assemble(backend, "file1", 4, 4)

    await backend.blobs.delete_upload(UPLOAD)

    assert await read_all(backend, "file1") == b"kept"


async def test_a_download_url_names_the_file_and_expires(backend: Backend, clock: FakeClock) -> None:
    await put(backend, 1, b"kept")
    await assemble(backend, "file1", 4, 4)

    url = await backend.blobs.download_url("file1", "notes.txt", "text/plain", clock() + timedelta(minutes=5))

    assert "file1" in url
    assert url != await backend.blobs.download_url("file1", "notes.txt", "text/plain", clock() + timedelta(minutes=6))


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "", "x" * 65, "dot.dot"])
async def test_ids_that_could_escape_the_store_are_refused(backend: Backend, bad_id: str) -> None:
    with pytest.raises(ValueError, match="invalid object id"):
        await backend.blobs.put_chunk(bad_id, 1, pieces(b"x"), 1, sha256_hex(b"x"))
    with pytest.raises(ValueError, match="invalid object id"):
        await backend.blobs.file_size(bad_id)
