"""Where the local backend keeps the bytes an upload sends, seen on disk: a chunk is one file under
``uploads/``, a refused one leaves nothing (not even a temporary file), names never become paths, and
finished uploads and deleted files leave no folders behind."""

from __future__ import annotations

import asyncio
import errno
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lfusys.settings import Settings
from tests.conftest import AppFactory
from tests.support import (
    API,
    BASE_URL,
    SMALL_CHUNKS,
    AppClient,
    LiveServer,
    another_user,
    chunks_of,
    csrf_headers,
    download,
    put_chunk,
    sha256_hex,
    signed_in,
    start_upload,
    upload_file,
    wait_for_status,
)

pytestmark = pytest.mark.local_only("the local backend's folders and files on disk")

Client = AppClient
DATA = bytes(i * 7 % 251 for i in range(10_000))  # two 4 KiB chunks and one of 1,808 bytes
CHUNKS = chunks_of(DATA, 4096)


@pytest.fixture
async def client(app_factory: AppFactory) -> AsyncIterator[Client]:
    async with AppClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL) as c:
        await signed_in(c)
        yield c


@pytest.fixture
async def upload_id(client: Client) -> str:
    response = await start_upload(client, len(DATA))
    assert response.status_code == 201, response.text
    upload_id: str = response.json()["upload_id"]
    return upload_id


def chunk_folder(blob_root: Path, upload_id: str) -> list[str]:
    """Every file in the upload's chunk folder, temporary ones included."""
    folder = blob_root / "uploads" / upload_id
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def blob_files(blob_root: Path) -> list[str]:
    return sorted(str(p.relative_to(blob_root)) for p in blob_root.rglob("*") if p.is_file())


def _exists(path: Path) -> bool:
    return path.exists()


def live_blob_root(server: LiveServer) -> Path:
    return server.data_dir / "blobs"


# --- chunks ----------------------------------------------------------------------------------


async def test_a_chunk_is_stored_as_one_file(client: Client, settings: Settings, upload_id: str) -> None:
    assert (await put_chunk(client, upload_id, 1, CHUNKS[0])).status_code == 200

    assert chunk_folder(settings.local.blob_root, upload_id) == ["chunk_1"]
    assert (settings.local.blob_root / "uploads" / upload_id / "chunk_1").read_bytes() == CHUNKS[0]


@pytest.mark.parametrize(
    ("n", "body", "sha256", "status"),
    [
        pytest.param(1, CHUNKS[0], "0" * 64, 422, id="not-the-announced-hash"),
        pytest.param(1, CHUNKS[1], sha256_hex(CHUNKS[0]), 422, id="another-chunks-bytes"),
        pytest.param(1, CHUNKS[0][:-1], None, 400, id="short"),
        pytest.param(1, CHUNKS[0] + b"x", None, 413, id="long"),
        pytest.param(3, CHUNKS[0], None, 413, id="a-full-chunk-as-the-last"),
    ],
)
async def test_a_refused_chunk_leaves_no_file_behind(
    client: Client, settings: Settings, upload_id: str, n: int, body: bytes, sha256: str | None, status: int
) -> None:
    response = await put_chunk(client, upload_id, n, body, sha256)

    assert response.status_code == status
    assert chunk_folder(settings.local.blob_root, upload_id) == []


async def test_a_chunk_for_a_state_that_takes_none_writes_nothing(
    client: Client, settings: Settings, upload_id: str
) -> None:
    await client.delete(f"{API}/uploads/{upload_id}", headers=await csrf_headers(client))

    response = await put_chunk(client, upload_id, 1, CHUNKS[0] * 2, sha256="0" * 64)

    assert response.status_code == 410
    assert chunk_folder(settings.local.blob_root, upload_id) == []


@pytest.mark.parametrize("upload_id", ["..", "..%2F..%2Ffiles", "%2e%2e", "a" * 65, "x;rm -rf"])
async def test_a_chunk_for_a_path_like_upload_id_writes_nothing(
    client: Client, settings: Settings, upload_id: str
) -> None:
    data_dir = settings.local.data_dir
    before = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file())

    response = await put_chunk(client, upload_id, 1, CHUNKS[0])

    assert response.status_code == 404
    after = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file())
    assert [name for name in after if "blobs" in name] == [name for name in before if "blobs" in name]


async def _streamed(data: bytes, piece: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def _put_streamed(client: httpx.AsyncClient, upload_id: str, n: int, body: bytes, sha256: str) -> httpx.Response:
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256}
    return await client.put(f"{API}/uploads/{upload_id}/chunks/{n}", content=_streamed(body), headers=headers)


async def test_a_streamed_chunk_is_stored_as_one_file(live: httpx.AsyncClient, small_chunk_server: LiveServer) -> None:
    upload_id = (await start_upload(live, len(DATA))).json()["upload_id"]

    response = await _put_streamed(live, upload_id, 1, CHUNKS[0], sha256_hex(CHUNKS[0]))

    assert response.status_code == 200
    assert (live_blob_root(small_chunk_server) / "uploads" / upload_id / "chunk_1").read_bytes() == CHUNKS[0]


@pytest.mark.parametrize(
    ("n", "body", "sha256"),
    [
        pytest.param(1, CHUNKS[0][:-1], None, id="short"),
        pytest.param(3, CHUNKS[-1][:-1], None, id="short-last"),
        pytest.param(1, CHUNKS[0] + b"x", None, id="long"),
        pytest.param(3, CHUNKS[0], None, id="long-last"),
        pytest.param(1, CHUNKS[0] * 4, None, id="much-too-long"),
        pytest.param(1, CHUNKS[0], sha256_hex(CHUNKS[1]), id="not-the-announced-hash"),
    ],
)
async def test_a_refused_streamed_chunk_leaves_no_file_behind(
    live: httpx.AsyncClient, small_chunk_server: LiveServer, n: int, body: bytes, sha256: str | None
) -> None:
    upload_id = (await start_upload(live, len(DATA))).json()["upload_id"]

    response = await _put_streamed(live, upload_id, n, body, sha256 or sha256_hex(body))

    assert response.status_code in {400, 413, 422}
    assert chunk_folder(live_blob_root(small_chunk_server), upload_id) == []


# --- finished uploads and files ----------------------------------------------------------------


async def test_a_finished_upload_leaves_no_chunk_folder(client: Client, settings: Settings) -> None:
    final = await upload_file(client, DATA)

    await _eventually_gone(settings.local.blob_root / "uploads" / final["upload_id"])
    assert blob_files(settings.local.blob_root) == [
        f"files/{final['file_id']}/manifest.json",
        *(f"files/{final['file_id']}/part_{n:06d}" for n in (1, 2, 3)),
    ]


async def test_chunks_sent_at_once_to_a_real_server_leave_no_chunk_folder(
    live: httpx.AsyncClient, small_chunk_server: LiveServer
) -> None:
    data = random.Random(6).randbytes(16 * 4096 - 100)
    created = (await start_upload(live, len(data))).json()
    chunks = chunks_of(data, created["chunk_size"])
    order = list(range(1, len(chunks) + 1))
    random.Random(7).shuffle(order)

    responses = await asyncio.gather(*(put_chunk(live, created["upload_id"], n, chunks[n - 1]) for n in order))
    assert [r.status_code for r in responses] == [200] * len(chunks)
    final = await wait_for_status(live, created["upload_id"])

    assert (await download(live, final["file_id"])).content == data
    await _eventually_gone(live_blob_root(small_chunk_server) / "uploads" / created["upload_id"])


async def _eventually_gone(path: Path) -> None:
    """The chunks are deleted right after the upload is reported completed."""
    for _ in range(500):
        if not _exists(path):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} is still there")


@pytest.mark.parametrize(
    "name", ["../../../etc/passwd", "..\\..\\Windows\\System32\\hosts", "/tmp/evil.sh", 'quote".txt\r\nSet-Cookie: a=b']
)
async def test_a_path_like_name_names_no_path(client: Client, settings: Settings, name: str) -> None:
    final = await upload_file(client, b"not a system file", name=name)

    assert blob_files(settings.local.blob_root) == [
        f"files/{final['file_id']}/manifest.json",
        f"files/{final['file_id']}/part_000001",
    ]
    assert sorted(p.name for p in settings.local.data_dir.parent.iterdir()) == [settings.local.data_dir.name]


async def test_a_deleted_file_leaves_no_folder_and_the_others_stay(client: Client, settings: Settings) -> None:
    gone = (await upload_file(client, b"delete me"))["file_id"]
    kept = (await upload_file(client, b"keep me"))["file_id"]
    intruder = await another_user(client)
    files = settings.local.blob_root / "files"

    refused = [
        await client.delete(f"{API}/files/{gone}"),  # no CSRF header
        await intruder.delete(f"{API}/files/{gone}", headers=await csrf_headers(intruder)),
    ]
    assert [r.status_code for r in refused] == [403, 404]
    assert sorted(p.name for p in files.iterdir()) == sorted([gone, kept])

    assert (await client.delete(f"{API}/files/{gone}", headers=await csrf_headers(client))).status_code == 204

    assert sorted(p.name for p in files.iterdir()) == [kept]


# --- a full disk -------------------------------------------------------------------------------


async def test_a_disk_that_fills_mid_chunk_is_507_and_nothing_else_is_harmed(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = (await start_upload(client, len(DATA))).json()["upload_id"]
    assert (await put_chunk(client, upload_id, 1, CHUNKS[0])).status_code == 200

    with monkeypatch.context() as patch:
        write, writev = os.write, os.writev

        def full_write(fd: int, data: Any) -> int:
            if len(data) > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return write(fd, data)

        def full_writev(fd: int, buffers: Any) -> int:
            if sum(len(buffer) for buffer in buffers) > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return writev(fd, buffers)

        # Chunk bytes are written in blocks; tiny writes (the event loop's own) still go through.
        patch.setattr(os, "write", full_write)
        patch.setattr(os, "writev", full_writev)
        full = await put_chunk(client, upload_id, 2, CHUNKS[1])

    assert full.status_code == 507
    assert full.json() == {"error": "the server has run out of storage space; try again later"}
    assert chunk_folder(settings.local.blob_root, upload_id) == ["chunk_1"]  # no temporary file left
    assert (await client.get(f"{API}/uploads/{upload_id}")).json()["status"] in {"pending", "in_progress"}
    # Space again: the same chunk goes through.
    assert (await put_chunk(client, upload_id, 2, CHUNKS[1])).status_code == 200
    assert (await put_chunk(client, upload_id, 3, CHUNKS[2])).status_code == 200
