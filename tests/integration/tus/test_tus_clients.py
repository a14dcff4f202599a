"""tuspy (a tus client people use) against a real server, on each backend: files of 1 byte, exactly one
chunk and many chunks in PATCHes of several sizes, with and without checksums; and an upload whose
PATCH is cut off midway keeps what arrived and is finished by tuspy from the server's offset. The
bytes downloaded through the files API are the ones sent."""

from __future__ import annotations

import base64
import os
import socket
import time
from pathlib import Path

import httpx
import pytest
from tusclient.client import TusClient

from tests.integration.client.conftest import CHUNK_SIZE, new_user
from tests.integration.tus.conftest import downloaded
from tests.support import API, LiveServer

pytestmark = pytest.mark.durable_only("a live server process, on each backend that outlives one")

TUS = f"{API}/tus/"


@pytest.mark.parametrize(
    ("size", "chunk_size", "checksum"),
    [
        (1, 1000, False),
        (CHUNK_SIZE, 1000, True),
        (CHUNK_SIZE, CHUNK_SIZE, False),
        (50_000, 3000, False),
        (50_000, 7777, True),
        (50_000, 1 << 30, False),  # tuspy's way: the whole file in one PATCH
    ],
    ids=["1-byte", "one-chunk-checksum", "one-chunk-one-patch", "many-chunks", "many-chunks-checksum", "one-patch"],
)
def test_tuspy_uploads_a_file(server: LiveServer, tmp_path: Path, size: int, chunk_size: int, checksum: bool) -> None:
    token = new_user(server)[1]
    data = os.urandom(size)
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    client = TusClient(server.url + TUS, headers={"Authorization": f"Bearer {token}"})

    with path.open("rb") as stream:  # tuspy would leave a file it opened itself open
        uploader = client.uploader(
            file_stream=stream,
            chunk_size=chunk_size,
            metadata={"filename": "report.pdf", "filetype": "application/pdf"},
            upload_checksum=checksum,
        )
        uploader.upload()

    assert uploader.url is not None
    info, content = downloaded(server, token, uploader.url)
    assert content == data
    assert (info["name"], info["type"], info["size"]) == ("report.pdf", "application/pdf", size)


def test_a_patch_cut_off_midway_keeps_what_arrived_and_tuspy_finishes_it(server: LiveServer, tmp_path: Path) -> None:
    token = new_user(server)[1]
    data = os.urandom(30_000)
    headers = {"authorization": f"Bearer {token}", "tus-resumable": "1.0.0"}
    metadata = "filename " + base64.b64encode(b"cut.bin").decode()
    with httpx.Client(base_url=server.url, headers=headers) as api:
        url = api.post(TUS, headers={"upload-length": str(len(data)), "upload-metadata": metadata}).headers["location"]

    # A PATCH that announces every byte but sends 10,000 and then loses its connection.
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        head = (
            f"PATCH {url} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: 0\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        connection.sendall(head.encode() + data[:10_000])
        time.sleep(0.3)  # let the server read it
    offset = 0
    with httpx.Client(base_url=server.url, headers=headers) as api:
        deadline = time.monotonic() + 10
        while offset != 10_000 and time.monotonic() < deadline:  # the server notices the cut, then stores
            offset = int(api.head(url).headers["upload-offset"])
            time.sleep(0.05)
    assert offset == 10_000

    path = tmp_path / "cut.bin"
    path.write_bytes(data)
    client = TusClient(server.url + TUS, headers={"Authorization": f"Bearer {token}"})
    with path.open("rb") as stream:
        uploader = client.uploader(file_stream=stream, url=server.url + url, chunk_size=4000)
        assert uploader.offset == 10_000, "tuspy asks the server where to go on from"
        uploader.upload()

    assert downloaded(server, token, server.url + url)[1] == data
