"""Whole uploads through HTTP: start, send chunks (in order, out of order, concurrently, resumed from
another device or after a restart), let the worker finish, download the same bytes back."""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any

import httpx
import pytest

from tests.conftest import AppFactory
from tests.support import (
    API,
    BASE_URL,
    PASSWORD,
    SMALL_CHUNKS,
    AppClient,
    chunks_deleted,
    chunks_of,
    csrf_headers,
    download,
    eventually,
    login,
    put_chunk,
    services_of,
    sha256_hex,
    signed_in,
    start_upload,
    upload_file,
    wait_for_status,
)

Client = AppClient


def _random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _file_checksum(chunks: list[bytes]) -> str:
    """SHA-256 of the concatenated raw SHA-256 digests of the chunks, in order."""
    return hashlib.sha256(b"".join(hashlib.sha256(chunk).digest() for chunk in chunks)).hexdigest()


async def _start(client: httpx.AsyncClient, data: bytes, **kwargs: Any) -> dict[str, Any]:
    response = await start_upload(client, len(data), **kwargs)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _send(client: httpx.AsyncClient, upload_id: str, chunks: list[bytes], order: list[int]) -> None:
    for n in order:
        response = await put_chunk(client, upload_id, n, chunks[n - 1])
        assert response.status_code == 200, response.text
        assert response.json()["already_stored"] is False


# --- sizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "total_chunks"),
    [
        (1, 1),  # one byte
        (4096, 1),  # exactly one chunk
        (4097, 2),  # one chunk and one byte
        (5 * 4096 + 123, 6),  # several chunks and a short last one
    ],
)
async def test_an_upload_comes_back_byte_for_byte(client: Client, size: int, total_chunks: int) -> None:
    data = _random_bytes(size, seed=size)
    created = await _start(client, data, name="original.bin", file_type="application/x-test")
    assert (created["chunk_size"], created["total_chunks"]) == (min(size, 4096), total_chunks)
    chunks = chunks_of(data, created["chunk_size"])

    await _send(client, created["upload_id"], chunks, list(range(1, total_chunks + 1)))
    final = await wait_for_status(client, created["upload_id"])
    downloaded = await download(client, final["file_id"])

    assert downloaded.status_code == 200
    assert downloaded.content == data
    assert downloaded.headers["content-length"] == str(size)
    assert downloaded.headers["content-type"].startswith("application/x-test")
    record = (await client.get(f"{API}/files/{final['file_id']}")).json()
    assert (record["name"], record["type"], record["size"]) == ("original.bin", "application/x-test", size)
    assert record["checksum"] == _file_checksum(chunks)
    assert (final["progress"], final["uploaded_chunks"]) == (100, total_chunks)
    await eventually(lambda: chunks_deleted(services_of(client), created["upload_id"]))


async def test_chunks_sent_out_of_order_make_the_same_file(client: Client) -> None:
    data = _random_bytes(5 * 4096 + 1, seed=1)
    created = await _start(client, data)
    chunks = chunks_of(data, created["chunk_size"])
    order = [6, 3, 1, 5, 2, 4]

    await _send(client, created["upload_id"], chunks, order[:-1])
    before_last = (await client.get(f"{API}/uploads/{created['upload_id']}")).json()
    await _send(client, created["upload_id"], chunks, order[-1:])
    final = await wait_for_status(client, created["upload_id"])

    assert before_last["status"] in {"pending", "in_progress"}
    assert before_last["uploaded_chunks"] == 5
    assert before_last["file_id"] is None
    assert (await download(client, final["file_id"])).content == data
    record = (await client.get(f"{API}/files/{final['file_id']}")).json()
    assert record["checksum"] == _file_checksum(chunks)


async def test_interleaved_requests_for_all_chunks_make_the_same_file(client: Client) -> None:
    # The test client serves one request at a time; the live-server tests below are truly concurrent.
    data = _random_bytes(8 * 4096 - 7, seed=2)
    created = await _start(client, data)
    chunks = chunks_of(data, created["chunk_size"])

    responses = await asyncio.gather(
        *(put_chunk(client, created["upload_id"], n, chunk) for n, chunk in reversed(list(enumerate(chunks, 1))))
    )
    final = await wait_for_status(client, created["upload_id"])

    assert [r.status_code for r in responses] == [200] * len(chunks)
    assert (await download(client, final["file_id"])).content == data


async def test_a_proposed_chunk_size_is_used_for_the_whole_upload(client: Client) -> None:
    data = _random_bytes(3000, seed=3)
    created = await _start(client, data, chunk_size=1024)
    chunks = chunks_of(data, 1024)

    await _send(client, created["upload_id"], chunks, [1, 2, 3])
    final = await wait_for_status(client, created["upload_id"])

    assert (final["chunk_size"], final["total_chunks"]) == (1024, 3)
    assert (await download(client, final["file_id"])).content == data


async def test_the_same_bytes_uploaded_twice_become_two_files(client: Client) -> None:
    data = _random_bytes(5000, seed=4)

    first = await upload_file(client, data)
    second = await upload_file(client, data)

    assert first["file_id"] != second["file_id"]
    files = (await client.get(f"{API}/files")).json()["files"]
    assert {f["id"] for f in files} == {first["file_id"], second["file_id"]}
    assert files[0]["checksum"] == files[1]["checksum"]


async def test_an_upload_resumes_from_another_device(client: Client) -> None:
    data = _random_bytes(4 * 4096, seed=5)
    created = await _start(client, data, name="holiday.mov")
    chunks = chunks_of(data, created["chunk_size"])
    await _send(client, created["upload_id"], chunks, [1, 3])
    phone = AppClient(client.app, base_url=BASE_URL)  # the same server, a browser of its own

    assert (await login(phone, "ada@example.com", PASSWORD)).status_code == 200
    unfinished = (await phone.get(f"{API}/uploads")).json()["uploads"]
    stored = (await phone.get(f"{API}/uploads/{created['upload_id']}/chunks")).json()
    missing = [n for n in range(1, unfinished[0]["total_chunks"] + 1) if n not in stored["chunks"]]
    await _send(phone, created["upload_id"], chunks, missing)
    final = await wait_for_status(phone, created["upload_id"])
    downloaded = await download(phone, final["file_id"])

    assert [(u["upload_id"], u["file_name"], u["uploaded_chunks"]) for u in unfinished] == [
        (created["upload_id"], "holiday.mov", 2)
    ]
    assert stored["hashes"] == {"1": sha256_hex(chunks[0]), "3": sha256_hex(chunks[2])}
    assert missing == [2, 4]
    assert downloaded.content == data


@pytest.mark.durable_only("the second app finds the first one's data")
async def test_an_upload_resumes_from_another_device_after_a_restart(app_factory: AppFactory) -> None:
    data = _random_bytes(4 * 4096, seed=5)
    async with AppClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL) as laptop:
        await signed_in(laptop)
        created = await _start(laptop, data, name="holiday.mov")
        chunks = chunks_of(data, created["chunk_size"])
        await _send(laptop, created["upload_id"], chunks, [1, 3])

    async with AppClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL) as phone:
        assert (await login(phone, "ada@example.com", PASSWORD)).status_code == 200
        unfinished = (await phone.get(f"{API}/uploads")).json()["uploads"]
        stored = (await phone.get(f"{API}/uploads/{created['upload_id']}/chunks")).json()
        missing = [n for n in range(1, unfinished[0]["total_chunks"] + 1) if n not in stored["chunks"]]
        await _send(phone, created["upload_id"], chunks, missing)
        final = await wait_for_status(phone, created["upload_id"])
        downloaded = await download(phone, final["file_id"])

    assert [(u["upload_id"], u["file_name"], u["uploaded_chunks"]) for u in unfinished] == [
        (created["upload_id"], "holiday.mov", 2)
    ]
    assert stored["hashes"] == {"1": sha256_hex(chunks[0]), "3": sha256_hex(chunks[2])}
    assert missing == [2, 4]
    assert downloaded.content == data


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stored", "fallback"),
    [
        ("../../../etc/passwd", ".._.._.._etc_passwd", ".._.._.._etc_passwd"),
        ("..\\..\\Windows\\System32\\hosts", ".._.._Windows_System32_hosts", ".._.._Windows_System32_hosts"),
        ("/tmp/evil.sh", "_tmp_evil.sh", "_tmp_evil.sh"),
        ('quote".txt\r\nSet-Cookie: a=b', 'quote".txtSet-Cookie: a=b', "quote_.txtSet-Cookie: a=b"),
        ("r\u00e9sum\u00e9\u202efdp.exe", "r\u00e9sum\u00e9fdp.exe", "r_sum_fdp.exe"),
    ],
)
async def test_a_path_like_name_is_only_a_name(client: Client, name: str, stored: str, fallback: str) -> None:
    # That it names no path on disk either: tests/integration/storage/local/test_blob_layout.py.
    data = b"not a system file"

    final = await upload_file(client, data, name=name)
    downloaded = await download(client, final["file_id"])

    record = (await client.get(f"{API}/files/{final['file_id']}")).json()
    assert record["name"] == stored
    assert downloaded.content == data
    disposition = downloaded.headers["content-disposition"]
    assert disposition.startswith(f"attachment; filename=\"{fallback}\"; filename*=UTF-8''")
    assert "/" not in disposition.split("filename*=")[0]
    assert "\r" not in disposition
    assert "\n" not in disposition


# --- truly concurrent, through a real server -------------------------------------------------


async def test_all_chunks_sent_at_once_make_the_same_file(live: httpx.AsyncClient) -> None:
    # That no chunk is left behind: tests/integration/storage/local/test_blob_layout.py.
    data = _random_bytes(16 * 4096 - 100, seed=6)
    created = await _start(live, data)
    chunks = chunks_of(data, created["chunk_size"])
    order = list(range(1, len(chunks) + 1))
    random.Random(7).shuffle(order)

    responses = await asyncio.gather(*(put_chunk(live, created["upload_id"], n, chunks[n - 1]) for n in order))
    final = await wait_for_status(live, created["upload_id"])
    downloaded = await download(live, final["file_id"])

    assert [r.status_code for r in responses] == [200] * 16
    assert [r.json()["n"] for r in responses] == order
    assert downloaded.status_code == 200
    assert downloaded.content == data
    record = (await live.get(f"{API}/files/{final['file_id']}")).json()
    assert record["checksum"] == _file_checksum(chunks)


async def test_several_uploads_at_once_keep_their_own_bytes(live: httpx.AsyncClient) -> None:
    files = [_random_bytes(3 * 4096 + i, seed=10 + i) for i in range(4)]
    created = [await _start(live, data, name=f"file-{i}.bin") for i, data in enumerate(files)]
    sends = [
        put_chunk(live, upload["upload_id"], n, chunk)
        for upload, data in zip(created, files, strict=True)
        for n, chunk in enumerate(chunks_of(data, upload["chunk_size"]), start=1)
    ]
    random.Random(8).shuffle(sends)

    responses = await asyncio.gather(*sends)
    finals = [await wait_for_status(live, upload["upload_id"]) for upload in created]

    assert {r.status_code for r in responses} == {200}
    for final, data in zip(finals, files, strict=True):
        assert (await download(live, final["file_id"])).content == data


async def test_the_same_chunk_sent_many_times_at_once_is_stored_once(live: httpx.AsyncClient) -> None:
    data = _random_bytes(2 * 4096, seed=9)
    created = await _start(live, data)
    chunks = chunks_of(data, created["chunk_size"])

    copies = await asyncio.gather(*(put_chunk(live, created["upload_id"], 1, chunks[0]) for _ in range(8)))
    await _send(live, created["upload_id"], chunks, [2])
    final = await wait_for_status(live, created["upload_id"])

    assert [r.status_code for r in copies] == [200] * 8
    assert sorted(r.json()["already_stored"] for r in copies) == [False] + [True] * 7
    assert final["uploaded_chunks"] == 2
    assert (await download(live, final["file_id"])).content == data


async def test_different_bytes_for_one_chunk_at_once_store_exactly_one_of_them(live: httpx.AsyncClient) -> None:
    data = _random_bytes(2 * 4096, seed=11)
    created = await _start(live, data)
    candidates = [_random_bytes(4096, seed=100 + i) for i in range(8)]

    responses = await asyncio.gather(*(put_chunk(live, created["upload_id"], 1, c) for c in candidates))
    stored = (await live.get(f"{API}/uploads/{created['upload_id']}/chunks")).json()

    assert sorted(r.status_code for r in responses) == [200] + [409] * 7
    winner = next(c for c, r in zip(candidates, responses, strict=True) if r.status_code == 200)
    assert stored == {"chunks": [1], "hashes": {"1": sha256_hex(winner)}, "next_cursor": None}
    await _send(live, created["upload_id"], [winner, data[4096:]], [2])
    final = await wait_for_status(live, created["upload_id"])
    assert (await download(live, final["file_id"])).content == winner + data[4096:]


async def test_cancelling_while_chunks_arrive_leaves_no_file(live: httpx.AsyncClient) -> None:
    data = _random_bytes(8 * 4096, seed=12)
    created = await _start(live, data)
    chunks = chunks_of(data, created["chunk_size"])
    cancel = live.delete(f"{API}/uploads/{created['upload_id']}", headers=await csrf_headers(live))

    results = await asyncio.gather(
        *(put_chunk(live, created["upload_id"], n, chunk) for n, chunk in enumerate(chunks[:-1], start=1)), cancel
    )
    late = await put_chunk(live, created["upload_id"], len(chunks), chunks[-1])

    assert results[-1].status_code == 204
    assert {r.status_code for r in results[:-1]} <= {200, 410}
    assert late.status_code == 410
    assert (await live.get(f"{API}/uploads/{created['upload_id']}")).json()["status"] == "cancelled"
    assert (await live.get(f"{API}/files")).json()["files"] == []
