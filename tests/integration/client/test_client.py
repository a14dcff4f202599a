"""The Python client against a real server: uploads of one byte, one chunk and many chunks come back
byte for byte; an interrupted upload resumes sending only the missing chunks; a local file changed
meanwhile is refused before anything is sent; downloads carry on from a ``.part`` file."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from lfusys.client import AsyncClient, Client, FileChanged, NotFound, UploadProgress, chunk_checksum
from tests.integration.client.conftest import CHUNK_SIZE, new_user, write_file
from tests.support import API, LiveServer, chunks_of, random_bytes

pytestmark = pytest.mark.durable_only("a live server process, on each backend that outlives one")


class Counting(httpx.AsyncBaseTransport):
    """The real transport, noting the chunk number of every PUT and the Range header of every GET."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.puts: list[int] = []
        self.ranges: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.puts.append(int(request.url.path.rsplit("/", 1)[1]))
        if request.method == "GET":
            self.ranges.append(request.headers.get("range"))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Stop(Exception):
    pass


def stop_after(chunks: int) -> tuple[list[UploadProgress], Callable[[UploadProgress], None]]:
    seen: list[UploadProgress] = []

    def on_progress(progress: UploadProgress) -> None:
        seen.append(progress)
        if sum(1 for event in seen if event.event == "chunk") >= chunks:
            raise Stop

    return seen, on_progress


async def stored_chunks(server: LiveServer, token: str, upload_id: str) -> set[int]:
    async with httpx.AsyncClient(base_url=server.url, headers={"authorization": f"Bearer {token}"}) as http:
        page = (await http.get(f"{API}/uploads/{upload_id}/chunks")).json()
        return set(page["chunks"])


@pytest.mark.parametrize("size", [1, CHUNK_SIZE, 9 * CHUNK_SIZE + 123], ids=["one-byte", "one-chunk", "many-chunks"])
async def test_an_upload_downloads_byte_for_byte(server: LiveServer, token: str, tmp_path: Path, size: int) -> None:
    data = random_bytes(size)
    path = write_file(tmp_path / "data.bin", data)
    events: list[UploadProgress] = []

    async with AsyncClient(server.url, token) as client:
        info = await client.upload(path, on_progress=events.append)
        listed = await client.list_files()
        saved = await client.download(info.id, tmp_path / "copy.bin")

    digests = [hashlib.sha256(chunk).digest() for chunk in chunks_of(data, CHUNK_SIZE)]
    assert (info.name, info.size, info.checksum) == ("data.bin", size, chunk_checksum(digests))
    assert [file.id for file in listed] == [info.id]
    assert saved == info
    assert (tmp_path / "copy.bin").read_bytes() == data
    assert not (tmp_path / "copy.bin.part").exists()
    assert [event.event for event in events] == ["start"] + ["chunk"] * len(digests) + ["finalizing", "done"]
    assert events[-1].done_bytes == size


async def test_an_interrupted_upload_resumes_sending_only_the_missing_chunks(
    server: LiveServer, token: str, tmp_path: Path
) -> None:
    data = random_bytes(40 * CHUNK_SIZE)
    path = write_file(tmp_path / "big.bin", data)
    seen, on_progress = stop_after(10)
    async with AsyncClient(server.url, token) as client:
        with pytest.raises(Stop):
            await client.upload(path, concurrency=3, on_progress=on_progress)
    upload_id = seen[0].upload_id
    stored = await stored_chunks(server, token, upload_id)
    counting = Counting()
    resumed: list[UploadProgress] = []

    async with AsyncClient(server.url, token, transport=counting) as client:
        info = await client.upload(path, concurrency=3, on_progress=resumed.append)
        await client.download(info.id, tmp_path / "copy.bin")

    assert 10 <= len(stored) < 40
    assert sorted(counting.puts) == sorted(set(range(1, 41)) - stored)
    assert resumed[0].upload_id == upload_id
    assert resumed[0].resumed_chunks == len(stored)
    assert (tmp_path / "copy.bin").read_bytes() == data


async def test_a_file_changed_since_its_interrupted_upload_is_refused_and_nothing_is_sent(
    server: LiveServer, token: str, tmp_path: Path
) -> None:
    data = bytearray(random_bytes(20 * CHUNK_SIZE))
    path = write_file(tmp_path / "big.bin", bytes(data))
    seen, on_progress = stop_after(3)
    async with AsyncClient(server.url, token) as client:
        with pytest.raises(Stop):
            await client.upload(path, concurrency=1, on_progress=on_progress)
    data[5] ^= 0xFF  # in chunk 1, which is stored
    path.write_bytes(bytes(data))
    counting = Counting()

    async with AsyncClient(server.url, token, transport=counting) as client:
        with pytest.raises(FileChanged, match=r"changed since its interrupted upload .* \(chunk 1 differs\)"):
            await client.upload(path)

    assert counting.puts == []
    assert 1 in await stored_chunks(server, token, seen[0].upload_id)


async def test_a_download_carries_on_from_its_part_file(server: LiveServer, token: str, tmp_path: Path) -> None:
    data = random_bytes(3 * CHUNK_SIZE + 7)
    path = write_file(tmp_path / "data.bin", data)
    dest = tmp_path / "copy.bin"
    (tmp_path / "copy.bin.part").write_bytes(data[:5000])
    counting = Counting()

    async with AsyncClient(server.url, token, transport=counting) as client:
        info = await client.upload(path)
        await client.download(info.id, dest)

    assert dest.read_bytes() == data
    assert "bytes=5000-" in counting.ranges


async def test_the_synchronous_client(server: LiveServer, token: str, tmp_path: Path) -> None:
    data = random_bytes(2 * CHUNK_SIZE + 1)
    path = write_file(tmp_path / "data.bin", data)

    def use() -> tuple[str, list[str], bytes]:
        with Client(server.url, token) as client:
            info = client.upload(path, concurrency=2)
            listed = [file.id for file in client.list_files()]
            client.download(info.id, tmp_path / "copy.bin")
            copied = (tmp_path / "copy.bin").read_bytes()
            client.delete(info.id)
            with pytest.raises(NotFound):
                client.file(info.id)
            return info.id, listed, copied

    # From a thread: the facade runs its own loop, whatever the caller's.
    file_id, listed, copied = await asyncio.to_thread(use)

    assert listed == [file_id]
    assert copied == data


async def test_an_upload_survives_the_server_being_killed_and_started_again(
    tmp_path: Path, data_dir: Path, backend_name: str
) -> None:
    """The server dies (SIGKILL) with chunks in flight and comes back on the same address: the client's
    retries carry the upload through, and the file is byte for byte the local one. (Storage events the
    dead worker had taken are handed out again after the queue's visibility timeout: 2 s here.)"""
    settings = {
        "LFUSYS_MIN_CHUNK_SIZE": "1024",
        "LFUSYS_DEFAULT_CHUNK_SIZE": str(CHUNK_SIZE),
        "LFUSYS_QUEUE_VISIBILITY_TIMEOUT": "2",
    }
    servers = [LiveServer(data_dir, tmp_path / "server.log", backend=backend_name, workers=1, **settings)]
    try:
        token = new_user(servers[0])[1]
        data = random_bytes(200 * CHUNK_SIZE)
        path = write_file(tmp_path / "big.bin", data)

        def restart_once(progress: UploadProgress) -> None:
            if progress.event == "chunk" and progress.sent_bytes >= 50 * CHUNK_SIZE and len(servers) == 1:
                servers[0].process.kill()  # a crash, with requests in flight
                servers[0].stop()
                servers.append(servers[0].restarted())

        async with AsyncClient(servers[0].url, token, backoff=0.2) as client:
            info = await client.upload(path, concurrency=4, on_progress=restart_once)
            await client.download(info.id, tmp_path / "back.bin")
    finally:
        for server in servers:
            server.stop()

    assert len(servers) == 2, "the server was restarted mid-upload"
    assert (tmp_path / "back.bin").read_bytes() == data
