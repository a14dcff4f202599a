"""PUT /api/v1/uploads/{id}/chunks/{n}: a chunk is stored only if it is exactly the right length and matches
X-Chunk-Hash, only for its owner, only while the session takes chunks; every refusal stores nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support import (
    API,
    AppClient,
    FakeClock,
    another_user,
    chunks_of,
    csrf_headers,
    download,
    login,
    make_expired,
    make_failed,
    make_finalizing,
    pass_expiry,
    put_chunk,
    services_of,
    sha256_hex,
    start_upload,
    status_of,
    upload_file,
    wait_for_status,
)

Client = AppClient

# 10,000 bytes in 4 KiB chunks: two full chunks and a last one of 1,808 bytes.
DATA = bytes(i * 7 % 251 for i in range(10_000))
CHUNKS = chunks_of(DATA, 4096)
LAST = len(CHUNKS)


@pytest.fixture
async def upload_id(client: Client) -> str:
    """A fresh session for :data:`DATA`."""
    response = await start_upload(client, len(DATA))
    assert response.status_code == 201, response.text
    assert response.json()["total_chunks"] == LAST
    upload_id: str = response.json()["upload_id"]
    return upload_id


async def _stored_blobs(client: Client, upload_id: str) -> list[int]:
    """The chunks the blob store holds for the upload (whether or not the API knows of them)."""
    return await services_of(client).backend.blobs.list_chunks(upload_id)


async def _stored_chunks(client: httpx.AsyncClient, upload_id: str) -> list[int]:
    chunks: list[int] = (await client.get(f"{API}/uploads/{upload_id}/chunks")).json()["chunks"]
    return chunks


async def _assert_nothing_stored(client: Client, upload_id: str) -> None:
    assert await _stored_chunks(client, upload_id) == []
    assert await _stored_blobs(client, upload_id) == []
    status = (await client.get(f"{API}/uploads/{upload_id}")).json()
    assert (status["uploaded_chunks"], status["status"]) == (0, "pending")


async def _put(
    client: httpx.AsyncClient, upload_id: str, n: int | str, content: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await client.put(f"{API}/uploads/{upload_id}/chunks/{n}", content=content, headers=headers)


# --- accepted ------------------------------------------------------------------------------


async def test_a_chunk_is_stored_and_acknowledged(client: Client, upload_id: str) -> None:
    response = await put_chunk(client, upload_id, 1, CHUNKS[0])

    assert response.status_code == 200
    assert response.json() == {"n": 1, "size": 4096, "sha256": sha256_hex(CHUNKS[0]), "already_stored": False}
    assert await _stored_chunks(client, upload_id) == [1]
    assert await _stored_blobs(client, upload_id) == [1]
    # The stored bytes themselves, hashed by the blob store.
    assert await services_of(client).backend.blobs.chunk_sha256(upload_id, 1) == sha256_hex(CHUNKS[0])


async def test_the_last_chunk_is_the_remainder(client: Client, upload_id: str) -> None:
    response = await put_chunk(client, upload_id, LAST, CHUNKS[-1])

    assert response.status_code == 200
    assert response.json()["size"] == len(DATA) - 2 * 4096 == 1808


async def test_an_upper_case_hash_is_accepted(client: Client, upload_id: str) -> None:
    response = await put_chunk(client, upload_id, 1, CHUNKS[0], sha256=sha256_hex(CHUNKS[0]).upper())

    assert response.status_code == 200
    assert response.json()["sha256"] == sha256_hex(CHUNKS[0])
    hashes = (await client.get(f"{API}/uploads/{upload_id}/chunks")).json()["hashes"]
    assert hashes == {"1": sha256_hex(CHUNKS[0])}


async def test_resending_a_stored_chunk_is_harmless(client: Client, upload_id: str) -> None:
    first = await put_chunk(client, upload_id, 2, CHUNKS[1])

    again = await put_chunk(client, upload_id, 2, CHUNKS[1])

    assert first.json()["already_stored"] is False
    assert again.status_code == 200
    assert again.json() == {"n": 2, "size": 4096, "sha256": sha256_hex(CHUNKS[1]), "already_stored": True}
    status = (await client.get(f"{API}/uploads/{upload_id}")).json()
    assert status["uploaded_chunks"] == 1


async def test_a_chunk_may_be_larger_than_the_json_body_limit(client: Client) -> None:
    data = b"L" * (200 * 1024)
    created = (await start_upload(client, len(data), chunk_size=len(data))).json()

    response = await put_chunk(client, created["upload_id"], 1, data)

    assert response.status_code == 200
    assert response.json()["size"] == 200 * 1024


# --- the hash --------------------------------------------------------------------------------


async def test_a_chunk_without_a_hash_is_refused(client: Client, upload_id: str) -> None:
    response = await _put(client, upload_id, 1, CHUNKS[0], await csrf_headers(client))

    assert response.status_code == 400
    assert response.json() == {"error": "X-Chunk-Hash: must be the chunk's SHA-256 as 64 hex digits"}
    await _assert_nothing_stored(client, upload_id)


@pytest.mark.parametrize(
    "chunk_hash",
    [
        "",
        " ",
        "abc",
        sha256_hex(CHUNKS[0])[:63],
        sha256_hex(CHUNKS[0]) + "0",
        "g" * 64,
        "sha256=" + sha256_hex(CHUNKS[0]),
        "sha256:" + sha256_hex(CHUNKS[0]),
        "0x" + sha256_hex(CHUNKS[0])[2:],
        sha256_hex(CHUNKS[0])[:32] + " " + sha256_hex(CHUNKS[0])[33:],
        "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",  # base64, not hex
        "d41d8cd98f00b204e9800998ecf8427e",  # an MD5
    ],
)
async def test_a_chunk_with_a_malformed_hash_is_refused(client: Client, upload_id: str, chunk_hash: str) -> None:
    headers = {**await csrf_headers(client), "x-chunk-hash": chunk_hash}

    response = await _put(client, upload_id, 1, CHUNKS[0], headers)

    assert response.status_code == 400
    assert "X-Chunk-Hash" in response.json()["error"]
    await _assert_nothing_stored(client, upload_id)


async def test_a_chunk_that_does_not_match_its_hash_is_refused(client: Client, upload_id: str) -> None:
    corrupted = bytes([CHUNKS[0][0] ^ 1]) + CHUNKS[0][1:]

    response = await put_chunk(client, upload_id, 1, corrupted, sha256=sha256_hex(CHUNKS[0]))

    assert response.status_code == 422
    assert response.json() == {"error": f"chunk 1 does not match X-Chunk-Hash (its SHA-256 is {sha256_hex(corrupted)})"}
    await _assert_nothing_stored(client, upload_id)


async def test_a_chunk_refused_for_its_hash_can_be_sent_again_correctly(client: Client, upload_id: str) -> None:
    assert (await put_chunk(client, upload_id, 1, CHUNKS[0], sha256="0" * 64)).status_code == 422

    response = await put_chunk(client, upload_id, 1, CHUNKS[0])

    assert response.status_code == 200
    assert response.json()["already_stored"] is False


async def test_another_chunks_bytes_are_not_accepted_in_its_place(client: Client, upload_id: str) -> None:
    response = await put_chunk(client, upload_id, 1, CHUNKS[1], sha256=sha256_hex(CHUNKS[0]))

    assert response.status_code == 422
    await _assert_nothing_stored(client, upload_id)


# --- the length ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "body", "expected"),
    [
        (1, CHUNKS[0][:-1], 4096),
        (1, CHUNKS[0][:1], 4096),
        (1, CHUNKS[-1], 4096),  # the remainder sent as a full chunk
        (LAST, CHUNKS[-1][:-1], 1808),
    ],
)
async def test_a_chunk_shorter_than_its_exact_length_is_refused(
    client: Client, upload_id: str, n: int, body: bytes, expected: int
) -> None:
    response = await put_chunk(client, upload_id, n, body)

    assert response.status_code == 400
    assert response.json() == {"error": f"chunk {n} must be exactly {expected} bytes; received {len(body)}"}
    await _assert_nothing_stored(client, upload_id)


@pytest.mark.parametrize(
    ("n", "body", "expected"),
    [
        (1, CHUNKS[0] + b"x", 4096),
        (1, CHUNKS[0] * 3, 4096),
        (LAST, CHUNKS[-1] + b"x", 1808),
        (LAST, CHUNKS[0], 1808),  # a full chunk sent as the last one
    ],
)
async def test_a_chunk_longer_than_its_exact_length_is_too_large(
    client: Client, upload_id: str, n: int, body: bytes, expected: int
) -> None:
    response = await put_chunk(client, upload_id, n, body)

    assert response.status_code == 413
    assert response.json() == {"error": f"chunk {n} must be exactly {expected} bytes; received more"}
    await _assert_nothing_stored(client, upload_id)


async def test_an_empty_chunk_is_refused(client: Client, upload_id: str) -> None:
    response = await put_chunk(client, upload_id, 1, b"")

    assert response.status_code == 400
    await _assert_nothing_stored(client, upload_id)


@pytest.mark.parametrize("content_length", ["abc", "-1", "4096.0", "0x1000"])
async def test_a_malformed_content_length_is_refused(client: Client, upload_id: str, content_length: str) -> None:
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256_hex(CHUNKS[0]), "content-length": content_length}

    response = await _put(client, upload_id, 1, CHUNKS[0], headers)

    assert response.status_code == 400
    assert response.json() == {"error": "Content-Length: must be a whole number"}
    await _assert_nothing_stored(client, upload_id)


# --- the chunk number ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, -1, LAST + 1, 10_001, 2**63, 10**30, "9" * 5000])
async def test_a_chunk_number_outside_1_to_total_is_refused(client: Client, upload_id: str, n: int | str) -> None:
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256_hex(CHUNKS[0])}

    response = await _put(client, upload_id, n, CHUNKS[0], headers)

    assert response.status_code == 400
    assert response.json()["error"].startswith("chunk number must be")
    await _assert_nothing_stored(client, upload_id)


@pytest.mark.parametrize("n", ["one", "1.0", "1e3", "+1", " 1", "\uff11"])
async def test_a_chunk_number_that_is_not_a_whole_number_is_refused(client: Client, upload_id: str, n: str) -> None:
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256_hex(CHUNKS[0])}

    response = await _put(client, upload_id, n, CHUNKS[0], headers)

    assert response.status_code == 400
    assert response.json()["error"].startswith("chunk number must be a whole number")
    await _assert_nothing_stored(client, upload_id)


@pytest.mark.parametrize("n", ["", "..%2F..%2Fchunk_1"])
async def test_a_missing_or_path_like_chunk_number_matches_no_route(client: Client, upload_id: str, n: str) -> None:
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256_hex(CHUNKS[0])}

    response = await _put(client, upload_id, n, CHUNKS[0], headers)

    assert response.status_code in {404, 405}
    await _assert_nothing_stored(client, upload_id)


# --- who may send ----------------------------------------------------------------------------


async def test_a_chunk_for_an_unknown_upload_is_not_found(client: Client) -> None:
    unknown = uuid.uuid4().hex

    response = await put_chunk(client, unknown, 1, CHUNKS[0])

    assert response.status_code == 404
    assert response.json() == {"error": "upload not found"}
    assert await _stored_blobs(client, unknown) == []


@pytest.mark.parametrize("upload_id", ["..", "..%2F..%2Ffiles", "%2e%2e", "a" * 65, "x;rm -rf"])
async def test_a_chunk_for_a_path_like_upload_id_is_not_found(client: Client, upload_id: str) -> None:
    # That nothing is written anywhere on disk: tests/integration/storage/local/test_layout.py.
    response = await put_chunk(client, upload_id, 1, CHUNKS[0])

    assert response.status_code == 404


async def test_another_users_chunk_is_not_found_and_stores_nothing(client: Client, upload_id: str) -> None:
    intruder = await another_user(client)

    response = await put_chunk(intruder, upload_id, 1, CHUNKS[0])

    assert response.status_code == 404
    assert response.json() == {"error": "upload not found"}
    await _assert_nothing_stored(client, upload_id)


async def test_a_chunk_needs_the_csrf_header(client: Client, upload_id: str) -> None:
    chunk_hash = {"x-chunk-hash": sha256_hex(CHUNKS[0])}

    missing = await _put(client, upload_id, 1, CHUNKS[0], chunk_hash)
    wrong = await _put(client, upload_id, 1, CHUNKS[0], {**chunk_hash, "x-csrf-token": "0" * 64})
    empty = await _put(client, upload_id, 1, CHUNKS[0], {**chunk_hash, "x-csrf-token": ""})

    assert [missing.status_code, wrong.status_code, empty.status_code] == [403, 403, 403]
    assert missing.json() == {"error": "CSRF token verification failed"}
    await _assert_nothing_stored(client, upload_id)


async def test_a_chunk_needs_the_csrf_cookie_as_well_as_the_header(client: Client, upload_id: str) -> None:
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256_hex(CHUNKS[0])}
    client.cookies.delete("lfusys_csrf")

    response = await _put(client, upload_id, 1, CHUNKS[0], headers)

    assert response.status_code == 403
    await _assert_nothing_stored(client, upload_id)


async def test_a_chunk_needs_a_signed_in_user(client: Client, upload_id: str) -> None:
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256_hex(CHUNKS[0])}
    client.cookies.delete("lfusys_access")

    response = await _put(client, upload_id, 1, CHUNKS[0], headers)

    assert response.status_code == 401
    assert await _stored_blobs(client, upload_id) == []


# --- the session's state ---------------------------------------------------------------------


async def test_a_different_chunk_under_a_stored_number_is_a_conflict(client: Client, upload_id: str) -> None:
    assert (await put_chunk(client, upload_id, 1, CHUNKS[0])).status_code == 200
    other = b"\xff" * 4096

    response = await put_chunk(client, upload_id, 1, other)

    assert response.status_code == 409
    assert response.json() == {"error": "chunk 1 is already stored with different content"}
    chunks = (await client.get(f"{API}/uploads/{upload_id}/chunks")).json()
    assert chunks == {"chunks": [1], "hashes": {"1": sha256_hex(CHUNKS[0])}, "next_cursor": None}


async def test_a_completed_upload_takes_no_more_chunks(client: Client) -> None:
    final = await upload_file(client, DATA)

    again = await put_chunk(client, final["upload_id"], 1, CHUNKS[0])
    other = await put_chunk(client, final["upload_id"], 1, b"\xff" * 4096)

    assert again.status_code == 409
    assert again.json() == {"error": "upload is completed; it takes no more chunks"}
    assert other.status_code == 409


async def test_a_finalizing_upload_takes_no_more_chunks(client: Client, clock: FakeClock, upload_id: str) -> None:
    await make_finalizing(services_of(client), clock, upload_id)

    response = await put_chunk(client, upload_id, 1, CHUNKS[0])

    assert response.status_code == 409
    assert response.json() == {"error": "upload is finalizing; it takes no more chunks"}
    assert await _stored_blobs(client, upload_id) == []


async def test_a_cancelled_upload_is_gone(client: Client, upload_id: str) -> None:
    assert (await put_chunk(client, upload_id, 1, CHUNKS[0])).status_code == 200
    await client.delete(f"{API}/uploads/{upload_id}", headers=await csrf_headers(client))

    response = await put_chunk(client, upload_id, 2, CHUNKS[1])

    assert response.status_code == 410
    assert response.json() == {"error": "upload was cancelled"}
    assert 2 not in await _stored_blobs(client, upload_id)


async def test_an_expired_upload_is_gone(client: Client, clock: FakeClock, upload_id: str) -> None:
    await make_expired(services_of(client), clock, upload_id)
    assert (await login(client, "ada@example.com")).status_code == 200  # the old sign-in has expired too

    response = await put_chunk(client, upload_id, 1, CHUNKS[0])

    assert response.status_code == 410
    assert response.json() == {"error": "upload has expired"}
    assert await _stored_blobs(client, upload_id) == []


async def test_an_upload_past_its_expiry_is_gone_before_the_janitor_marks_it(
    client: Client, clock: FakeClock, upload_id: str
) -> None:
    assert (await put_chunk(client, upload_id, 1, CHUNKS[0])).status_code == 200
    pass_expiry(services_of(client), clock)
    assert (await login(client, "ada@example.com")).status_code == 200  # the old sign-in has expired too

    response = await put_chunk(client, upload_id, 2, CHUNKS[1])

    assert response.status_code == 410
    assert response.json() == {"error": "upload has expired"}
    assert (await status_of(services_of(client), upload_id)).accepts_chunks  # not marked expired yet
    assert 2 not in await _stored_blobs(client, upload_id)


async def test_a_failed_upload_is_gone(client: Client, clock: FakeClock, upload_id: str) -> None:
    await make_failed(services_of(client), clock, upload_id)

    response = await put_chunk(client, upload_id, 1, CHUNKS[0])

    assert response.status_code == 410
    assert response.json() == {"error": "upload failed"}
    assert await _stored_blobs(client, upload_id) == []


async def test_the_state_is_checked_before_the_body(client: Client, upload_id: str) -> None:
    # A cancelled session answers 410 even for a chunk that is also too long and wrongly hashed.
    await client.delete(f"{API}/uploads/{upload_id}", headers=await csrf_headers(client))

    response = await put_chunk(client, upload_id, 1, CHUNKS[0] * 2, sha256="0" * 64)

    assert response.status_code == 410
    assert await _stored_blobs(client, upload_id) == []


# --- streamed bodies (no Content-Length) through a real server -------------------------------


async def _streamed(data: bytes, piece: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def _put_streamed(client: httpx.AsyncClient, upload_id: str, n: int, body: bytes, sha256: str) -> httpx.Response:
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256}
    return await client.put(f"{API}/uploads/{upload_id}/chunks/{n}", content=_streamed(body), headers=headers)


async def _live_upload(client: httpx.AsyncClient) -> str:
    response = await start_upload(client, len(DATA))
    assert response.status_code == 201, response.text
    upload_id: str = response.json()["upload_id"]
    return upload_id


async def test_a_streamed_chunk_of_exactly_the_right_length_is_stored(live: httpx.AsyncClient) -> None:
    upload_id = await _live_upload(live)

    response = await _put_streamed(live, upload_id, 1, CHUNKS[0], sha256_hex(CHUNKS[0]))

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 200
    assert response.json()["already_stored"] is False
    # The stored bytes are the chunk: the file made of it comes back byte for byte.
    for n in range(2, LAST + 1):
        assert (await put_chunk(live, upload_id, n, CHUNKS[n - 1])).status_code == 200
    final = await wait_for_status(live, upload_id)
    assert (await download(live, final["file_id"])).content == DATA


@pytest.mark.parametrize(
    ("n", "body", "status"),
    [
        (1, CHUNKS[0][:-1], 400),
        (LAST, CHUNKS[-1][:-1], 400),
        (1, CHUNKS[0] + b"x", 413),
        (LAST, CHUNKS[0], 413),
        (1, CHUNKS[0] * 4, 413),
    ],
)
async def test_a_streamed_chunk_of_the_wrong_length_stores_nothing(
    live: httpx.AsyncClient, n: int, body: bytes, status: int
) -> None:
    upload_id = await _live_upload(live)

    response = await _put_streamed(live, upload_id, n, body, sha256_hex(body))

    assert response.status_code == status
    assert "must be exactly" in response.json()["error"]
    assert await _stored_chunks(live, upload_id) == []
    await _assert_not_stored_by_the_server(live, upload_id, n)


async def test_a_streamed_chunk_that_does_not_match_its_hash_stores_nothing(live: httpx.AsyncClient) -> None:
    upload_id = await _live_upload(live)

    response = await _put_streamed(live, upload_id, 1, CHUNKS[0], sha256_hex(CHUNKS[1]))

    assert response.status_code == 422
    assert await _stored_chunks(live, upload_id) == []
    await _assert_not_stored_by_the_server(live, upload_id, 1)


async def _assert_not_stored_by_the_server(client: httpx.AsyncClient, upload_id: str, n: int) -> None:
    """The blob store of a server in another process holds no chunk ``n``: the right bytes are stored anew.
    (That no temporary file is left either: tests/integration/storage/local/test_blobs.py.)"""
    again = await put_chunk(client, upload_id, n, CHUNKS[n - 1])
    assert again.status_code == 200
    assert again.json()["already_stored"] is False
