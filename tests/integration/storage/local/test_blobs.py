"""What only the filesystem blob store does: its event sink, its folders, stray entries in them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from lfusys.storage.local.blobs import LocalBlobStore
from lfusys.storage.ports import UploadRemoved
from tests.integration.pipeline.conftest import body_of
from tests.support import sha256_hex


async def test_a_chunk_is_stored_even_when_its_event_cannot_be_queued(tmp_path: Path) -> None:
    async def queue_down(body: str) -> None:
        raise OSError("database is locked")

    store = LocalBlobStore(tmp_path, on_object_created=queue_down)
    data = os.urandom(100)

    with structlog.testing.capture_logs() as logged:
        stored = await store.put_chunk("up1", 1, body_of(data), len(data), sha256_hex(data))

    assert stored is True
    assert await store.list_chunks("up1") == [1]
    assert [line["event"] for line in logged] == ["storage event could not be queued; recovery will record the chunk"]


async def test_stray_entries_are_not_taken_for_uploads(tmp_path: Path) -> None:
    async def ignore(body: str) -> None:
        return None

    store = LocalBlobStore(tmp_path, on_object_created=ignore)
    (tmp_path / "uploads" / "lost+found").mkdir()
    (tmp_path / "uploads" / ".DS_Store").write_bytes(b"x")
    await store.put_chunk("up1", 1, body_of(b"a"), 1, sha256_hex(b"a"))

    assert await store.upload_prefixes() == ["up1"]


async def test_a_chunk_whose_upload_folder_vanished_mid_stream_is_not_stored(tmp_path: Path) -> None:
    async def ignore(body: str) -> None:
        return None

    store = LocalBlobStore(tmp_path, on_object_created=ignore)

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * 10
        await store.delete_upload("up1")  # the session ended and the janitor cleaned up meanwhile
        yield b"b" * 10

    with pytest.raises(UploadRemoved):
        await store.put_chunk("up1", 1, body(), 20, sha256_hex(b"a" * 10 + b"b" * 10))

    assert await store.list_chunks("up1") == []
