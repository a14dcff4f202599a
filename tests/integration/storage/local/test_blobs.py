"""What only the filesystem blob store does: its event sink, its folders and temporary files, stray
entries in them."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from lfusys.files.signing import SignedLinks
from lfusys.storage.local.blobs import LocalBlobStore
from lfusys.storage.objects import chunk_key
from lfusys.storage.ports import ChunkHashMismatch, ChunkSizeMismatch, UploadRemoved
from tests.support import FakeClock, body_of, opened_services, random_bytes, register_owner, sha256_hex, stored_upload

pytestmark = pytest.mark.local_only("the filesystem blob store's own folders and files")

LINKS = SignedLinks("k" * 64)


async def ignore(body: str) -> None:
    return None


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder``, temporary ones included."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


async def pieces(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    """A body streamed in small pieces, as a chunked request arrives."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_chunk_is_stored_even_when_its_event_cannot_be_queued(tmp_path: Path) -> None:
    async def queue_down(body: str) -> None:
        raise OSError("database is locked")

    store = LocalBlobStore(tmp_path, on_object_created=queue_down, links=LINKS)
    data = os.urandom(100)

    with structlog.testing.capture_logs() as logged:
        stored = await store.put_chunk("up1", 1, body_of(data), len(data), sha256_hex(data))

    assert stored is True
    assert await store.list_chunks("up1") == [1]
    assert [line["event"] for line in logged] == ["storage event could not be queued; recovery will record the chunk"]


async def test_an_acknowledged_chunk_has_its_event_queued_already_and_a_repeat_queues_it_again(
    tmp_path: Path,
) -> None:
    """As with S3: once put_chunk has returned, a crash cannot lose the chunk's event."""
    queued: list[dict[str, Any]] = []

    async def queue(body: str) -> None:
        queued.append(json.loads(body))

    store = LocalBlobStore(tmp_path, on_object_created=queue, links=LINKS)
    data = os.urandom(100)

    first = await store.put_chunk("up1", 3, body_of(data), len(data), sha256_hex(data))
    keys_after_first = [record["s3"]["object"]["key"] for event in queued for record in event["Records"]]
    repeat = await store.put_chunk("up1", 3, body_of(data), len(data), sha256_hex(data))

    assert (first, repeat) == (True, False)
    assert keys_after_first == [chunk_key("up1", 3)]
    assert len(queued) == 2


async def test_a_trickling_body_is_written_as_it_comes_not_held_until_a_block_is_full(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, on_object_created=ignore, links=LINKS)
    data = os.urandom(2 * 1024 * 1024)
    piece = 64 * 1024
    written_while_streaming: list[int] = []

    async def trickle() -> AsyncIterator[bytes]:
        for start in range(0, len(data), piece):
            if start == 8 * piece:  # half a block sent, slowly: how much of it is on disk already?
                temporary = next((tmp_path / "uploads" / "up1").glob(".chunk_1.*.part"))
                written_while_streaming.append(temporary.stat().st_size)
            yield data[start : start + piece]
            await asyncio.sleep(0.03 if start < 8 * piece else 0)

    assert await store.put_chunk("up1", 1, trickle(), len(data), sha256_hex(data))

    # Each piece waited at most one more piece's time in memory: all but the last one or two are written.
    assert written_while_streaming[0] >= 6 * piece
    assert await store.chunk_sha256("up1", 1) == sha256_hex(data)


async def test_a_chunk_is_one_file_in_its_uploads_folder(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, on_object_created=ignore, links=LINKS)
    data = os.urandom(5000)

    await store.put_chunk("up1", 3, pieces(data), len(data), sha256_hex(data))

    assert files_under(tmp_path) == ["uploads/up1/chunk_3"]
    assert (tmp_path / "uploads" / "up1" / "chunk_3").read_bytes() == data


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"x" * 4999, ChunkSizeMismatch),  # short
        (b"x" * 5001, ChunkSizeMismatch),  # long
        (b"x" * 20_000, ChunkSizeMismatch),  # much too long
        (b"y" * 5000, ChunkHashMismatch),  # the right length, other bytes
    ],
)
async def test_a_refused_chunk_leaves_no_temporary_file(tmp_path: Path, body: bytes, error: type[Exception]) -> None:
    store = LocalBlobStore(tmp_path, on_object_created=ignore, links=LINKS)
    expected = b"x" * 5000

    with pytest.raises(error):
        await store.put_chunk("up1", 1, pieces(body), len(expected), sha256_hex(expected))

    assert [name for name in files_under(tmp_path) if name.startswith("uploads/")] == []
    assert await store.list_chunks("up1") == []


async def test_a_chunk_whose_body_breaks_off_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, on_object_created=ignore, links=LINKS)

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put_chunk("up1", 1, broken(), 5000, sha256_hex(b"x" * 5000))

    assert [name for name in files_under(tmp_path) if name.startswith("uploads/")] == []


async def test_a_chunk_whose_upload_folder_vanished_mid_stream_is_not_stored(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, on_object_created=ignore, links=LINKS)

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * 10
        await store.delete_upload("up1")  # the session ended and the janitor cleaned up meanwhile
        yield b"b" * 10

    with pytest.raises(UploadRemoved):
        await store.put_chunk("up1", 1, body(), 20, sha256_hex(b"a" * 10 + b"b" * 10))

    assert await store.list_chunks("up1") == []
    assert files_under(tmp_path / "uploads") == []


async def test_stray_entries_are_not_taken_for_chunks(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, on_object_created=ignore, links=LINKS)
    await store.put_chunk("up1", 1, body_of(b"a"), 1, sha256_hex(b"a"))
    (tmp_path / "uploads" / "up1" / ".DS_Store").write_bytes(b"x")
    (tmp_path / "uploads" / "up1" / "chunk_2.bak").write_bytes(b"x")

    assert await store.list_chunks("up1") == [1]


async def test_stray_entries_under_the_data_directory_do_not_stop_a_sweep(tmp_path: Path, clock: FakeClock) -> None:
    async with opened_services(tmp_path / "data", clock, "local") as services:
        uploads_dir = services.settings.local.blob_root / "uploads"
        (uploads_dir / "lost+found").mkdir()
        (uploads_dir / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        owner = await register_owner(services)
        cancelled = await stored_upload(services, owner, random_bytes(4096 * 2), order=[1])
        await services.sessions.cancel(owner, cancelled.id)

        report = await services.janitor.sweep()

        assert report.failures == 0
        assert report.cleaned == 1
        assert await services.backend.blobs.list_chunks(cancelled.id) == []
        assert not (uploads_dir / cancelled.id).exists()
        assert (uploads_dir / "lost+found").is_dir()  # not ours: left alone
        assert (uploads_dir / ".DS_Store").is_file()


async def test_a_chunk_sent_in_thousands_of_tiny_pieces_is_stored_whole(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, on_object_created=ignore, links=LINKS)
    data = os.urandom(3 * 1024 * 1024 + 7)

    # Far more pieces per written block than one writev call takes.
    assert await store.put_chunk("up1", 1, pieces(data, size=100), len(data), sha256_hex(data))
    assert await store.chunk_sha256("up1", 1) == sha256_hex(data)
    assert files_under(tmp_path / "uploads") == ["up1/chunk_1"]
