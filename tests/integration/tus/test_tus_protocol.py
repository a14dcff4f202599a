"""/api/v1/tus/ with a raw HTTP client, on every backend: creation, HEAD, PATCH in any size, termination,
expiration, checksum, and every refusal the protocol names — each with its status, a plain-text reason,
and nothing stored by a refused request."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest

from lfusys.tus.service import CLAIM_LEASE
from tests.conftest import AppFactory
from tests.support import (
    API,
    BASE_URL,
    SMALL_CHUNKS,
    AppClient,
    FakeClock,
    another_user,
    csrf_headers,
    download,
    pass_expiry,
    services_of,
    signed_in,
    wait_for_status,
)

TUS = f"{API}/tus/"
DATA = bytes(i * 13 % 251 for i in range(10_000))  # 4 KiB chunks: 4096, 4096, 1808
VERSION = {"tus-resumable": "1.0.0"}
OCTETS = {"content-type": "application/offset+octet-stream"}


def checksum(algorithm: str, data: bytes) -> str:
    """An ``Upload-Checksum`` value (sha1 and md5 are what tus clients send; no secret depends on them)."""
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


METADATA = f"filename {b64('notes.txt')},filetype {b64('text/plain')},is_confidential"


@pytest.fixture
async def client(app_factory: AppFactory) -> AsyncIterator[AppClient]:
    async with AppClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL) as c:
        await signed_in(c)
        yield c


@pytest.fixture
async def bearer(client: AppClient) -> dict[str, str]:
    """The headers of a script: a personal API token with the upload and read scopes, and tus's version."""
    made = await client.post(
        f"{API}/tokens", json={"name": "tus", "scopes": ["upload", "read"]}, headers=await csrf_headers(client)
    )
    assert made.status_code == 201, made.text
    return {"authorization": f"Bearer {made.json()['token']}", **VERSION}


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], length: int = len(DATA), **extra: str
) -> httpx.Response:
    return await client.post(
        TUS, headers={**headers, "upload-length": str(length), "upload-metadata": METADATA, **extra}
    )


async def created(client: httpx.AsyncClient, headers: dict[str, str], length: int = len(DATA)) -> str:
    response = await create(client, headers, length)
    assert response.status_code == 201, response.text
    location: str = response.headers["location"]
    return location


async def patch(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], offset: int, body: bytes, **extra: str
) -> httpx.Response:
    return await client.patch(url, headers={**headers, **OCTETS, "upload-offset": str(offset), **extra}, content=body)


async def offset_of(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> int:
    response = await client.head(url, headers=headers)
    assert response.status_code == 200, response.headers
    return int(response.headers["upload-offset"])


async def the_file(client: AppClient, url: str) -> bytes:
    upload_id = url.rsplit("/", 1)[1]
    state = await wait_for_status(client, upload_id, "completed")
    response = await download(client, state["file_id"])
    assert response.status_code == 200
    return response.content


async def test_options_says_what_the_server_speaks_without_sign_in(client: AppClient) -> None:
    response = await AppClient(client.app).options(TUS)

    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["tus-version"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) >= {
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    }
    assert int(response.headers["tus-max-size"]) == services_of(client).settings.uploads.max_file_size
    assert set(response.headers["tus-checksum-algorithm"].split(",")) == {"sha1", "sha256", "md5"}


@pytest.mark.parametrize("sizes", [[10_000], [1, 4095, 5904], [3000, 3000, 3000, 1000], [4096, 4096, 1808]])
async def test_patches_of_any_size_make_the_file(client: AppClient, bearer: dict[str, str], sizes: list[int]) -> None:
    url = await created(client, bearer)
    head = await client.head(url, headers=bearer)
    assert head.headers["upload-offset"] == "0"
    assert head.headers["upload-length"] == str(len(DATA))
    assert head.headers["upload-metadata"] == METADATA
    assert head.headers["cache-control"] == "no-store"
    assert "upload-expires" in head.headers

    offset = 0
    for size in sizes:
        response = await patch(client, url, bearer, offset, DATA[offset : offset + size])
        assert response.status_code == 204, response.text
        assert response.headers["tus-resumable"] == "1.0.0"
        offset += size
        assert response.headers["upload-offset"] == str(offset)
        assert await offset_of(client, url, bearer) == offset

    assert await the_file(client, url) == DATA
    files = (await client.get(f"{API}/files")).json()["files"]
    assert [(f["name"], f["type"], f["size"]) for f in files] == [("notes.txt", "text/plain", len(DATA))]


async def test_creation_with_upload_stores_the_first_bytes(client: AppClient, bearer: dict[str, str]) -> None:
    response = await client.post(
        TUS,
        headers={**bearer, **OCTETS, "upload-length": str(len(DATA)), "upload-metadata": METADATA},
        content=DATA[:5000],
    )

    assert response.status_code == 201, response.text
    assert response.headers["upload-offset"] == "5000"
    url = response.headers["location"]
    assert (await patch(client, url, bearer, 5000, DATA[5000:])).status_code == 204
    assert await the_file(client, url) == DATA


@pytest.mark.durable_only("a restart, on each backend that outlives one")
async def test_a_tail_survives_a_restart(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL) as first:
        await signed_in(first)
        headers = {**VERSION, **await csrf_headers(first)}
        url = await created(first, headers)
        assert (await patch(first, url, headers, 0, DATA[:6000])).status_code == 204
        cookies = dict(first.cookies)

    async with AppClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL, cookies=cookies) as second:
        headers = {**VERSION, **await csrf_headers(second)}
        assert await offset_of(second, url, headers) == 6000
        assert (await patch(second, url, headers, 6000, DATA[6000:])).status_code == 204
        assert await the_file(second, url) == DATA


async def test_a_wrong_offset_is_409_and_changes_nothing(client: AppClient, bearer: dict[str, str]) -> None:
    url = await created(client, bearer)
    assert (await patch(client, url, bearer, 0, DATA[:100])).status_code == 204

    for wrong in (0, 99, 101, 5000):
        response = await patch(client, url, bearer, wrong, DATA[wrong : wrong + 10])
        assert response.status_code == 409, wrong
        assert "offset is 100" in response.text
        assert response.headers["content-type"].startswith("text/plain")

    assert await offset_of(client, url, bearer) == 100


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({"content-type": "application/octet-stream"}, 415, "application/offset+octet-stream"),
        ({"content-type": ""}, 415, "application/offset+octet-stream"),
        ({"upload-offset": ""}, 400, "Upload-Offset"),
        ({"upload-offset": "-1"}, 400, "Upload-Offset"),
        ({"upload-offset": "ten"}, 400, "Upload-Offset"),
        ({"tus-resumable": "0.2.2"}, 412, "1.0.0"),
        ({"upload-checksum": "crc32 AAAAAA=="}, 400, "crc32"),
        ({"upload-checksum": "sha1"}, 400, "Upload-Checksum"),
        ({"upload-checksum": "sha1 not-base64!"}, 400, "base64"),
        ({"upload-checksum": f"sha1 {base64.b64encode(b'short').decode()}"}, 400, "wrong length"),
    ],
)
async def test_a_bad_patch_is_refused_with_its_reason(
    client: AppClient, bearer: dict[str, str], headers: dict[str, str], status: int, reason: str
) -> None:
    url = await created(client, bearer)

    response = await client.patch(url, headers={**bearer, **OCTETS, "upload-offset": "0", **headers}, content=b"abc")

    assert response.status_code == status, response.text
    assert reason in response.text
    assert await offset_of(client, url, bearer) == 0


async def test_without_tus_resumable_every_request_is_412(client: AppClient, bearer: dict[str, str]) -> None:
    url = await created(client, bearer)
    no_version = {"authorization": bearer["authorization"]}

    for response in (
        await client.post(TUS, headers={**no_version, "upload-length": "10"}),
        await client.head(url, headers=no_version),
        await client.patch(url, headers={**no_version, **OCTETS, "upload-offset": "0"}, content=b"x"),
        await client.delete(url, headers=no_version),
    ):
        assert response.status_code == 412
        assert response.headers["tus-version"] == "1.0.0"

    assert await offset_of(client, url, bearer) == 0


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 400, "Upload-Length"),
        ({"upload-length": "0"}, 400, "at least 1 byte"),
        ({"upload-length": "lots"}, 400, "Upload-Length"),
        ({"upload-length": "10", "upload-metadata": "filename"}, 201, ""),
        ({"upload-length": "10", "upload-metadata": "filename !!!"}, 400, "base64"),
        ({"upload-length": "10", "upload-metadata": f"a {b64('x')},a {b64('y')}"}, 400, "twice"),
        ({"upload-length": "10", "upload-metadata": "a b c"}, 400, "Upload-Metadata"),
        ({"upload-length": "10", "upload-defer-length": "1"}, 412, "Upload-Defer-Length"),
        ({"upload-length": "10", "upload-concat": "partial"}, 412, "Upload-Concat"),
    ],
)
async def test_a_bad_creation_is_refused_and_makes_nothing(
    client: AppClient, bearer: dict[str, str], headers: dict[str, str], status: int, reason: str
) -> None:
    response = await client.post(TUS, headers={**bearer, **headers})

    assert response.status_code == status, response.text
    assert reason in response.text
    unfinished = (await client.get(f"{API}/uploads")).json()["uploads"]
    assert len(unfinished) == (1 if status == 201 else 0)


async def test_too_large_a_length_is_413(client: AppClient, bearer: dict[str, str]) -> None:
    too_large = services_of(client).settings.uploads.max_file_size + 1

    response = await create(client, bearer, too_large)

    assert response.status_code == 413
    assert (await client.get(f"{API}/uploads")).json()["uploads"] == []


async def test_bytes_past_the_length_are_413_and_the_upload_goes_on(client: AppClient, bearer: dict[str, str]) -> None:
    url = await created(client, bearer)

    response = await patch(client, url, bearer, 0, DATA + b"extra")

    assert response.status_code == 413
    offset = await offset_of(client, url, bearer)
    assert (await patch(client, url, bearer, offset, DATA[offset:])).status_code == 204
    assert await the_file(client, url) == DATA


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
async def test_a_checksum_that_matches_is_taken(client: AppClient, bearer: dict[str, str], algorithm: str) -> None:
    url = await created(client, bearer)

    for start, end in ((0, 5000), (5000, len(DATA))):
        digest = base64.b64encode(hashlib.new(algorithm, DATA[start:end]).digest()).decode()
        response = await patch(
            client, url, bearer, start, DATA[start:end], **{"upload-checksum": f"{algorithm} {digest}"}
        )
        assert response.status_code == 204, response.text

    assert await the_file(client, url) == DATA


async def test_a_checksum_mismatch_is_460_and_its_bytes_are_discarded(
    client: AppClient, bearer: dict[str, str]
) -> None:
    url = await created(client, bearer)
    assert (await patch(client, url, bearer, 0, DATA[:1000])).status_code == 204
    upload_id = url.rsplit("/", 1)[1]
    wrong = checksum("sha1", b"something else")

    response = await patch(client, url, bearer, 1000, DATA[1000:], **{"upload-checksum": wrong})

    assert response.status_code == 460
    assert "Upload-Checksum" in response.text
    assert await offset_of(client, url, bearer) == 1000
    assert await services_of(client).backend.blobs.list_chunks(upload_id) == []
    right = checksum("sha1", DATA[1000:])
    response = await patch(client, url, bearer, 1000, DATA[1000:], **{"upload-checksum": right})
    assert response.status_code == 204
    assert await the_file(client, url) == DATA


async def test_a_terminated_upload_is_gone(client: AppClient, bearer: dict[str, str]) -> None:
    url = await created(client, bearer)
    assert (await patch(client, url, bearer, 0, DATA[:5000])).status_code == 204

    response = await client.delete(url, headers=bearer)

    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert (await client.head(url, headers=bearer)).status_code == 410
    after = await patch(client, url, bearer, 5000, DATA[5000:])
    assert after.status_code == 410
    assert "cancelled" in after.text
    assert (await client.get(f"{API}/files")).json()["files"] == []


async def test_an_expired_upload_is_gone(client: AppClient, bearer: dict[str, str], clock: FakeClock) -> None:
    url = await created(client, bearer)
    head = await client.head(url, headers=bearer)
    assert head.headers["upload-expires"].endswith(" GMT")

    pass_expiry(services_of(client), clock)  # the bearer token has no expiry of its own

    assert (await client.head(url, headers=bearer)).status_code == 410
    assert (await patch(client, url, bearer, 0, DATA)).status_code == 410


async def test_someone_elses_upload_is_unknown(client: AppClient, bearer: dict[str, str]) -> None:
    url = await created(client, bearer)
    eve = await another_user(client)
    eve_headers = {**VERSION, **await csrf_headers(eve)}

    assert (await eve.head(url, headers=eve_headers)).status_code == 404
    assert (await patch(eve, url, eve_headers, 0, DATA)).status_code == 404
    assert (await eve.delete(url, headers=eve_headers)).status_code == 404
    assert await offset_of(client, url, bearer) == 0


async def test_unknown_ids_are_404(client: AppClient, bearer: dict[str, str]) -> None:
    for upload_id in ("0" * 32, "no-such-upload"):
        response = await client.head(f"{TUS}{upload_id}", headers=bearer)
        assert response.status_code == 404
        assert (await patch(client, f"{TUS}{upload_id}", bearer, 0, b"x")).status_code == 404


async def test_a_token_needs_the_upload_scope_and_a_cookie_needs_csrf(client: AppClient) -> None:
    made = await client.post(
        f"{API}/tokens", json={"name": "read only", "scopes": ["read"]}, headers=await csrf_headers(client)
    )
    reader = {"authorization": f"Bearer {made.json()['token']}", **VERSION}
    assert (await create(client, reader)).status_code == 403

    anonymous = AppClient(client.app)
    url = await created(client, {**VERSION, **await csrf_headers(client)})
    assert (await anonymous.head(url, headers=VERSION)).status_code == 401
    assert (await create(anonymous, VERSION)).status_code == 403, "a write without cookies or token: CSRF first"

    assert (await create(client, VERSION)).status_code == 403, "cookies without the CSRF header"


async def test_two_writers_at_one_offset_cannot_both_write(
    client: AppClient, bearer: dict[str, str], clock: FakeClock
) -> None:
    url = await created(client, bearer)
    upload_id = url.rsplit("/", 1)[1]
    store = services_of(client).backend.tus
    assert await store.claim(upload_id, 0, "another replica", clock() + CLAIM_LEASE, clock()) is not None

    busy = await patch(client, url, bearer, 0, DATA)

    assert busy.status_code == 409
    assert "another request" in busy.text
    clock.advance(CLAIM_LEASE)  # the other writer died: its claim lapses
    assert (await patch(client, url, bearer, 0, DATA)).status_code == 204
    assert not await store.advance(upload_id, "another replica", 0, 100, clock() + CLAIM_LEASE)
