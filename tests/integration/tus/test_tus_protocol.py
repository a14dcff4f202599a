"""/api/v1/tus/ with a raw HTTP client, on every backend: creation, HEAD, PATCH in any size, termination,
expiration, checksum, and every refusal the protocol names — each with its status, a plain-text reason,
and nothing stored by a refused request."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from lfusys.sessions.records import UploadSession
from lfusys.tus.service import CLAIM_LEASE, TusUploads
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
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "expiration",
        "checksum",
        "concatenation",
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
        ({"upload-length": "10", "upload-defer-length": "1"}, 400, "not both"),
        ({"upload-defer-length": "2"}, 400, "Upload-Defer-Length: must be 1"),
        ({"upload-defer-length": "1", "upload-concat": "partial"}, 400, "partial upload needs its Upload-Length"),
        ({"upload-length": "10", "upload-concat": "whole"}, 400, "Upload-Concat"),
        ({"upload-concat": "final;"}, 400, "names its partial uploads"),
        ({"upload-concat": "final"}, 400, "names its partial uploads"),
        ({"upload-concat": f"final;{TUS}{'0' * 31}"}, 400, "not the URL of an upload"),
        ({"upload-concat": "final;/elsewhere/" + "0" * 32}, 400, "not the URL of an upload"),
        ({"upload-concat": f"final;{TUS}{'0' * 32}"}, 404, "no such upload"),
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


# --- creation-defer-length -------------------------------------------------------------------------------

DEFERRING = {**SMALL_CHUNKS, "max_file_size": 40_000_000}
"""Small chunks for uploads whose length is not known yet too (they are chunked for the largest file)."""


@pytest.fixture
async def deferring(app_factory: AppFactory) -> AsyncIterator[tuple[AppClient, dict[str, str]]]:
    """A signed-in client of an app whose deferred uploads have 4 KiB chunks, and its cookie headers."""
    async with AppClient(app_factory(**DEFERRING), base_url=BASE_URL) as c:
        await signed_in(c)
        yield c, {**VERSION, **await csrf_headers(c)}


async def created_deferred(client: AppClient, headers: dict[str, str]) -> str:
    response = await client.post(TUS, headers={**headers, "upload-defer-length": "1", "upload-metadata": METADATA})
    assert response.status_code == 201, response.text
    location: str = response.headers["location"]
    return location


@pytest.mark.parametrize("length", [10_000, 8192, 4097, 5])
@pytest.mark.parametrize("length_with_last_bytes", [True, False], ids=["with-last-bytes", "in-an-empty-patch"])
async def test_a_deferred_length_comes_with_a_later_patch(
    deferring: tuple[AppClient, dict[str, str]], length: int, length_with_last_bytes: bool
) -> None:
    client, headers = deferring
    data = DATA[:length]
    url = await created_deferred(client, headers)
    head = await client.head(url, headers=headers)
    assert head.headers["upload-defer-length"] == "1"
    assert "upload-length" not in head.headers
    assert head.headers["upload-offset"] == "0"

    middle = length // 2
    assert (await patch(client, url, headers, 0, data[:middle])).status_code == 204
    if length_with_last_bytes:
        last = await patch(client, url, headers, middle, data[middle:], **{"upload-length": str(length)})
    else:
        assert (await patch(client, url, headers, middle, data[middle:])).status_code == 204
        last = await patch(client, url, headers, length, b"", **{"upload-length": str(length)})

    assert last.status_code == 204, last.text
    assert last.headers["upload-offset"] == str(length)
    head = await client.head(url, headers=headers)
    assert (head.headers["upload-length"], head.headers["upload-offset"]) == (str(length), str(length))
    assert "upload-defer-length" not in head.headers
    assert await the_file(client, url) == data
    assert await services_of(client).backend.uploads.usage(await user_id(client)) == length


async def user_id(client: AppClient) -> str:
    me = (await client.get(f"{API}/auth/me")).json()
    identifier: str = me["id"]
    return identifier


async def test_a_deferred_upload_reserves_the_largest_file_until_its_length_is_known(
    deferring: tuple[AppClient, dict[str, str]],
) -> None:
    client, headers = deferring
    uploads = services_of(client).backend.uploads
    url = await created_deferred(client, headers)
    assert await uploads.usage(await user_id(client)) == DEFERRING["max_file_size"]

    too_far = await patch(client, url, headers, 0, b"x" * 10, **{"upload-length": str(40_000_001)})
    assert too_far.status_code == 413
    assert await offset_of(client, url, headers) == 0
    assert (await patch(client, url, headers, 0, DATA[:10], **{"upload-length": "10"})).status_code == 204
    assert await the_file(client, url) == DATA[:10]
    assert await uploads.usage(await user_id(client)) == 10


async def test_a_deferred_upload_reserves_what_is_left_of_the_quota(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(**DEFERRING, user_quota_bytes=30_000), base_url=BASE_URL) as client:
        await signed_in(client)
        headers = {**VERSION, **await csrf_headers(client)}
        assert (await create(client, headers, 10_000)).status_code == 201
        url = await created_deferred(client, headers)
        assert await services_of(client).backend.uploads.usage(await user_id(client)) == 30_000

        refused = await client.post(TUS, headers={**headers, "upload-defer-length": "1"})
        assert refused.status_code == 413, "no room left for another"
        assert "quota" in refused.text
        past = await patch(client, url, headers, 0, b"x" * 10, **{"upload-length": "20001"})
        assert past.status_code == 413, "more than it reserved"
        assert (await patch(client, url, headers, 0, DATA[:5000], **{"upload-length": "5000"})).status_code == 204
        assert await services_of(client).backend.uploads.usage(await user_id(client)) == 15_000


async def test_a_wrong_upload_length_on_a_patch_is_refused_and_changes_nothing(
    deferring: tuple[AppClient, dict[str, str]],
) -> None:
    client, headers = deferring
    url = await created_deferred(client, headers)
    assert (await patch(client, url, headers, 0, DATA[:6000])).status_code == 204

    for length, reason in [("5999", "less than the 6000 bytes"), ("many", "Upload-Length"), ("0", "Upload-Length")]:
        response = await patch(client, url, headers, 6000, DATA[6000:], **{"upload-length": length})
        assert response.status_code == 400, response.text
        assert reason in response.text
        head = await client.head(url, headers=headers)
        assert (head.headers["upload-offset"], head.headers["upload-defer-length"]) == ("6000", "1")

    assert (await patch(client, url, headers, 6000, DATA[6000:], **{"upload-length": "10000"})).status_code == 204
    changed = await patch(client, url, headers, 10_000, b"", **{"upload-length": "10001"})
    assert changed.status_code == 400
    assert "cannot change" in changed.text
    same = await patch(client, url, headers, 10_000, b"", **{"upload-length": "10000"})
    assert same.status_code == 204
    assert await the_file(client, url) == DATA


async def test_a_deferred_upload_takes_no_more_than_it_reserved(deferring: tuple[AppClient, dict[str, str]]) -> None:
    client, headers = deferring
    url = await created_deferred(client, headers)

    response = await patch(client, url, headers, 0, b"x" * (DEFERRING["max_file_size"] + 1))

    assert response.status_code == 413


# --- concatenation ---------------------------------------------------------------------------------------


async def created_partial(client: AppClient, headers: dict[str, str], data: bytes, **extra: str) -> str:
    response = await client.post(
        TUS, headers={**headers, "upload-length": str(len(data)), "upload-concat": "partial", **extra}
    )
    assert response.status_code == 201, response.text
    url: str = response.headers["location"]
    sent = await patch(client, url, headers, 0, data, **extra)
    assert sent.status_code == 204, sent.text
    return url


async def final(client: AppClient, headers: dict[str, str], urls: list[str], **extra: str) -> httpx.Response:
    return await client.post(
        TUS, headers={**headers, "upload-concat": "final;" + " ".join(urls), "upload-metadata": METADATA, **extra}
    )


@pytest.mark.parametrize(
    "sizes", [[5000, 1, 4196], [4096, 4096, 1808], [10_000], [1, 1], [9000, 1000]], ids=lambda sizes: str(sizes)
)
async def test_a_final_upload_joins_its_partial_uploads(
    client: AppClient, bearer: dict[str, str], sizes: list[int]
) -> None:
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    parts = [DATA[start : start + size] for start, size in zip(starts, sizes, strict=True)]
    urls = [await created_partial(client, bearer, part) for part in parts]
    head = await client.head(urls[0], headers=bearer)
    assert (head.headers["upload-concat"], head.headers["upload-offset"]) == ("partial", str(sizes[0]))

    response = await final(client, bearer, [f"{BASE_URL}{urls[0]}", *urls[1:]])  # absolute or not

    assert response.status_code == 201, response.text
    url = response.headers["location"]
    head = await client.head(url, headers=bearer)
    assert head.headers["upload-concat"] == "final;" + " ".join(urls)
    assert head.headers["upload-length"] == head.headers["upload-offset"] == str(sum(sizes))
    assert await the_file(client, url) == b"".join(parts)
    files = (await client.get(f"{API}/files")).json()["files"]
    assert [(f["name"], f["type"], f["size"]) for f in files] == [("notes.txt", "text/plain", sum(sizes))]
    for partial in urls:  # their bytes are the file's now
        assert (await client.head(partial, headers=bearer)).status_code == 410
    assert await services_of(client).backend.uploads.usage(await user_id(client)) == sum(sizes)


async def recorded(client: AppClient, upload_id: str, chunks: int) -> UploadSession:
    """The session once the storage events of ``chunks`` of its chunks are recorded (they come beside the
    answers, from the event queue)."""
    uploads = services_of(client).backend.uploads
    seen = 0
    for _ in range(200):
        session = await uploads.get(upload_id)
        assert session is not None
        if (seen := session.recorded_chunks) >= chunks:
            return session
        await asyncio.sleep(0.05)
    raise AssertionError(f"{seen} of {chunks} chunks recorded")


async def test_a_partial_upload_never_becomes_a_file(client: AppClient, bearer: dict[str, str]) -> None:
    url = await created_partial(client, bearer, DATA)
    upload_id = url.rsplit("/", 1)[1]
    # every chunk's event recorded but the last one's: that chunk is kept back as the tail
    session = await recorded(client, upload_id, 2)
    assert session.total_chunks == 3

    await services_of(client).janitor.sweep()

    state = (await client.get(f"{API}/uploads/{upload_id}")).json()
    assert (state["status"], state["file_id"]) == ("in_progress", None)
    assert (await client.get(f"{API}/files")).json()["files"] == []
    assert await offset_of(client, url, bearer) == len(DATA)


async def test_a_partial_upload_with_a_checksum_is_joined_too(client: AppClient, bearer: dict[str, str]) -> None:
    first = await created_partial(client, bearer, DATA[:9000], **{"upload-checksum": checksum("sha1", DATA[:9000])})
    second = await created_partial(client, bearer, DATA[9000:])

    response = await final(client, bearer, [first, second])

    assert response.status_code == 201, response.text
    assert await the_file(client, response.headers["location"]) == DATA


async def test_a_bad_final_upload_is_refused_and_makes_nothing(client: AppClient, bearer: dict[str, str]) -> None:
    done = await created_partial(client, bearer, DATA[:5000])
    unfinished = (
        await client.post(TUS, headers={**bearer, "upload-length": "5000", "upload-concat": "partial"})
    ).headers["location"]
    assert (await patch(client, unfinished, bearer, 0, DATA[:4000])).status_code == 204
    plain = await created(client, bearer)
    eve = await another_user(client)
    eve_headers = {**VERSION, **await csrf_headers(eve)}
    eves = await created_partial(eve, eve_headers, DATA[:100])

    for urls, extra, status, reason in [
        ([done, unfinished], {}, 400, "not complete"),
        ([done, plain], {}, 400, "not a partial upload"),
        ([done, eves], {}, 404, "no such upload"),
        ([done, done], {}, 400, "named twice"),
        ([done], {"upload-length": "5000"}, 400, "give no Upload-Length"),
        ([done], {"upload-defer-length": "1"}, 400, "give no Upload-Length"),
    ]:
        response = await final(client, bearer, urls, **extra)
        assert response.status_code == status, response.text
        assert reason in response.text
    with_bytes = await client.post(TUS, headers={**bearer, **OCTETS, "upload-concat": f"final;{done}"}, content=b"abc")
    assert with_bytes.status_code == 400
    assert "takes no bytes" in with_bytes.text

    assert (await client.get(f"{API}/files")).json()["files"] == []
    assert await offset_of(client, done, bearer) == 5000, "still there to be joined"
    assert await offset_of(eve, eves, eve_headers) == 100
    joined = await final(client, bearer, [done])
    assert joined.status_code == 201
    assert await the_file(client, joined.headers["location"]) == DATA[:5000]


async def test_a_final_upload_takes_no_patch(client: AppClient, bearer: dict[str, str]) -> None:
    partial = await created_partial(client, bearer, DATA)
    url = (await final(client, bearer, [partial])).headers["location"]

    response = await patch(client, url, bearer, len(DATA), b"more")

    assert response.status_code == 403
    assert "takes no bytes" in response.text
    assert await the_file(client, url) == DATA


async def test_a_final_upload_left_unfinalized_by_a_stopped_process_is_finalized_by_the_janitor(
    client: AppClient, bearer: dict[str, str], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = [await created_partial(client, bearer, DATA[:6000]), await created_partial(client, bearer, DATA[6000:])]
    monkeypatch.setattr(TusUploads, "_finalize_soon", lambda self, upload_id: None)  # the process stops first
    url = (await final(client, bearer, urls)).headers["location"]
    services = services_of(client)
    await services.janitor.sweep()
    assert (await client.get(f"{API}/uploads/{url.rsplit('/', 1)[1]}")).json()["status"] == "in_progress"

    clock.advance(services.settings.queue.stalled_after + timedelta(seconds=1))
    await services.janitor.sweep()

    assert await the_file(client, url) == DATA


async def test_a_deferred_upload_whose_chunks_were_all_stored_is_finalized_by_the_janitor_if_need_be(
    deferring: tuple[AppClient, dict[str, str]], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, headers = deferring
    url = await created_deferred(client, headers)
    assert (await patch(client, url, headers, 0, DATA[:8192])).status_code == 204  # two whole chunks
    await recorded(client, url.rsplit("/", 1)[1], 2)
    monkeypatch.setattr(TusUploads, "_finalize_soon", lambda self, upload_id: None)  # the process stops first
    assert (await patch(client, url, headers, 8192, b"", **{"upload-length": "8192"})).status_code == 204
    services = services_of(client)
    await services.janitor.sweep()
    assert (await client.get(f"{API}/uploads/{url.rsplit('/', 1)[1]}")).json()["status"] == "in_progress"

    clock.advance(services.settings.queue.stalled_after + timedelta(seconds=1))
    await services.janitor.sweep()

    assert await the_file(client, url) == DATA[:8192]


async def test_a_patch_takes_one_place_for_chunks_and_more_only_when_spare(
    client: AppClient, bearer: dict[str, str]
) -> None:
    services = services_of(client)
    admission, per_user = services.admission, services.settings.uploads.max_chunk_puts_per_user
    user = await user_id(client)
    url = await created(client, bearer)
    with contextlib.ExitStack() as held:  # the user's other chunks in flight
        for _ in range(per_user):
            held.enter_context(admission.admit(user))

        refused = await patch(client, url, bearer, 0, DATA)

        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert await offset_of(client, url, bearer) == 0, "nothing read"
        held.close()
        for _ in range(per_user - 1):
            held.enter_context(admission.admit(user))

        assert (await patch(client, url, bearer, 0, DATA)).status_code == 204, "one place is enough"

    assert admission.in_flight == 0
    assert await the_file(client, url) == DATA


async def test_a_partial_upload_is_part_of_one_final_upload_only(
    client: AppClient, bearer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads = services_of(client).backend.uploads
    urls = [await created_partial(client, bearer, DATA[:6000]), await created_partial(client, bearer, DATA[6000:])]
    monkeypatch.setattr(TusUploads, "_finalize_soon", lambda self, upload_id: None)  # the first is not done yet
    first = await final(client, bearer, urls)
    assert first.status_code == 201
    before = await uploads.usage(await user_id(client))

    again = await final(client, bearer, urls[1:])

    assert again.status_code == 409, again.text
    assert "already part of a final upload" in again.text
    unfinished = (await client.get(f"{API}/uploads")).json()["uploads"]
    assert len(unfinished) == 3, "the two partial uploads and the first final one: no second final"
    assert await uploads.usage(await user_id(client)) == before, "its bytes are not reserved a third time"
    await services_of(client).finalizer.finalize(first.headers["location"].rsplit("/", 1)[1])
    assert await the_file(client, first.headers["location"]) == DATA
    assert await uploads.usage(await user_id(client)) == len(DATA)


async def test_a_final_upload_waits_for_a_request_still_holding_a_partial_one(
    client: AppClient, bearer: dict[str, str], clock: FakeClock
) -> None:
    urls = [await created_partial(client, bearer, DATA[:6000]), await created_partial(client, bearer, DATA[6000:])]
    held = urls[1].rsplit("/", 1)[1]
    store = services_of(client).backend.tus
    assert await store.claim(held, 4000, "another replica", clock() + CLAIM_LEASE, clock()) is not None
    usage = await services_of(client).backend.uploads.usage(await user_id(client))

    busy = await final(client, bearer, urls)

    assert busy.status_code == 409
    assert "held by another request" in busy.text
    assert len((await client.get(f"{API}/uploads")).json()["uploads"]) == 2, "the final upload made ended"
    assert await services_of(client).backend.uploads.usage(await user_id(client)) == usage
    first = await store.get(urls[0].rsplit("/", 1)[1])
    assert first is not None
    assert first.writer is None, "what it held is let go"
    clock.advance(CLAIM_LEASE)
    joined = await final(client, bearer, urls)
    assert joined.status_code == 201
    assert await the_file(client, joined.headers["location"]) == DATA
