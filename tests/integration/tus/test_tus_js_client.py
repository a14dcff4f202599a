"""tus-js-client (run under Node, as scripts and Uppy run it) against a real server, on each backend:
files of 1 byte, exactly one chunk and many chunks; an upload whose connection is cut mid-PATCH, which
tus-js-client resumes from the server's offset; and one it terminates. The bytes downloaded through the
files API are the ones sent."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from tests.integration.client.conftest import CHUNK_SIZE, new_user
from tests.integration.tus.conftest import downloaded
from tests.support import API, LiveServer

pytestmark = pytest.mark.durable_only("a live server process, on each backend that outlives one")

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tests" / "js" / "tus-upload.mjs"
TUS = f"{API}/tus/"


def tus_js(endpoint: str, token: str, path: Path, **options: object) -> dict[str, object]:
    """Run tus-js-client on ``path``; its one JSON line of outcome."""
    node = shutil.which("node")
    assert node is not None, "Node.js is needed"
    assert (SCRIPT.parent / "node_modules" / "tus-js-client").is_dir(), "scripts/bootstrap --test installs it"
    finished = subprocess.run(
        [node, str(SCRIPT), endpoint, token, str(path), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = finished.stdout.strip().splitlines()
    assert lines, finished.stderr
    outcome: dict[str, object] = json.loads(lines[-1])
    return outcome


@pytest.mark.parametrize(
    ("size", "options"),
    [
        (1, {}),
        (CHUNK_SIZE, {}),
        (CHUNK_SIZE, {"chunkSize": 1000}),
        (50_000, {}),
        (50_000, {"chunkSize": 3000}),
    ],
    ids=["1-byte", "one-chunk", "one-chunk-in-patches", "many-chunks", "many-chunks-in-patches"],
)
def test_tus_js_client_uploads_a_file(
    server: LiveServer, tmp_path: Path, size: int, options: dict[str, object]
) -> None:
    token = new_user(server)[1]
    data = os.urandom(size)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)

    outcome = tus_js(server.url + TUS, token, path, filename="photo.jpg", filetype="image/jpeg", **options)

    assert "url" in outcome, outcome
    info, content = downloaded(server, token, str(outcome["url"]))
    assert content == data
    assert (info["name"], info["type"], info["size"]) == ("photo.jpg", "image/jpeg", size)


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 to ``target`` that cuts the first connection once ``cut_after`` bytes of
    requests have gone through it; later connections pass untouched."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.used = False
        self.cut = False
        """Whether the first connection was cut (with the request bytes it carried so far)."""
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shut(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _shut(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        cutting = not self.used
        self.used = True

        async def requests() -> None:
            sent = 0
            while data := await client_reader.read(65536):
                if cutting and sent + len(data) >= self.cut_after:
                    upstream_writer.write(data[: self.cut_after - sent])
                    await upstream_writer.drain()
                    self.cut = True
                    raise ConnectionAbortedError("cut")
                upstream_writer.write(data)
                await upstream_writer.drain()
                sent += len(data)

        async def answers() -> None:
            while data := await upstream_reader.read(65536):
                client_writer.write(data)
                await client_writer.drain()

        try:
            await asyncio.gather(requests(), answers())
        except (ConnectionError, OSError):
            pass
        finally:
            for writer in (client_writer, upstream_writer):
                writer.transport.abort()


def test_a_connection_cut_mid_patch_is_resumed_from_the_servers_offset(server: LiveServer, tmp_path: Path) -> None:
    token = new_user(server)[1]
    data = os.urandom(200_000)
    path = tmp_path / "cut.bin"
    path.write_bytes(data)
    port = int(server.url.rsplit(":", 1)[1])

    with CuttingProxy(port, cut_after=100_000) as proxy:
        outcome = tus_js(f"http://127.0.0.1:{proxy.port}{TUS}", token, path, filename="cut.bin")

    assert proxy.cut
    assert "url" in outcome, outcome
    url = str(outcome["url"]).replace(f":{proxy.port}", f":{port}")
    assert downloaded(server, token, url)[1] == data


def test_tus_js_client_terminates_an_upload(server: LiveServer, tmp_path: Path) -> None:
    token = new_user(server)[1]
    data = os.urandom(50_000)
    path = tmp_path / "gone.bin"
    path.write_bytes(data)

    outcome = tus_js(server.url + TUS, token, path, chunkSize=5000, abortAfterBytes=10_000, terminate=True)

    assert outcome.get("aborted") is True, outcome
    headers = {"authorization": f"Bearer {token}", "tus-resumable": "1.0.0"}
    with httpx.Client(headers=headers) as api:
        assert api.head(str(outcome["url"])).status_code == 410
        assert api.get(f"{server.url}{API}/files").json()["files"] == []


@pytest.mark.parametrize(
    ("size", "parts"),
    [(50_000, 4), (50_000, 3), (3, 2), (12_288, 3)],
    ids=["4-parts", "3-parts", "tiny", "chunk-parts"],
)
def test_parallel_uploads_are_joined_into_one_file(server: LiveServer, tmp_path: Path, size: int, parts: int) -> None:
    token = new_user(server)[1]
    data = os.urandom(size)
    path = tmp_path / "parallel.bin"
    path.write_bytes(data)

    outcome = tus_js(server.url + TUS, token, path, filename="parallel.bin", parallelUploads=parts)

    assert "url" in outcome, outcome
    info, content = downloaded(server, token, str(outcome["url"]))
    assert content == data
    assert (info["name"], info["size"]) == ("parallel.bin", size)
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {token}"}) as api:
        files = api.get(f"{API}/files").json()["files"]
        unfinished = api.get(f"{API}/uploads").json()["uploads"]
    assert [f["name"] for f in files] == ["parallel.bin"], "the partial uploads are no files of their own"
    assert unfinished == [], "the partial uploads ended once joined"


@pytest.mark.parametrize(
    "size",
    [4 * 1024 * 1024 + 5, 4 * 1024 * 1024, 3_000_000, 10],
    ids=["with-a-tail", "whole-chunks", "whole-patches", "tiny"],
)
def test_an_upload_whose_length_is_deferred(server: LiveServer, tmp_path: Path, size: int) -> None:
    """tus-js-client gives the length with the PATCH that sends the last bytes (or, when they ended a PATCH
    before, with an empty one)."""
    token = new_user(server)[1]
    data = os.urandom(size)
    path = tmp_path / "stream.bin"
    path.write_bytes(data)

    outcome = tus_js(
        server.url + TUS,
        token,
        path,
        filename="stream.bin",
        stream=True,
        uploadLengthDeferred=True,
        chunkSize=1_000_000,
    )

    assert "url" in outcome, outcome
    info, content = downloaded(server, token, str(outcome["url"]))
    assert content == data
    assert info["size"] == size
