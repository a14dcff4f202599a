"""/api/v1/uploads: starting a session (every rule on name, type, size, quota and chunk size), listing the
caller's unfinished sessions, status, stored chunks, and cancelling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from lfusys.services import services_from
from lfusys.sessions.records import UploadStatus
from lfusys.storage.objects import ChunkStored
from tests.conftest import AppFactory
from tests.support import (
    API,
    BASE_URL,
    SMALL_CHUNKS,
    AppClient,
    FakeClock,
    another_user,
    chunks_deleted,
    chunks_of,
    csrf_headers,
    eventually,
    login,
    make_expired,
    make_finalizing,
    pass_expiry,
    put_chunk,
    services_of,
    sha256_hex,
    signed_in,
    start_upload,
    status_of,
    upload_file,
    wait_for_status,
)

Client = AppClient


@pytest.fixture
async def client(app_factory: AppFactory) -> AsyncIterator[Client]:
    """Not signed in, unlike the ``client`` of this package's conftest: tests that need a user ask for :func:`user`."""
    async with AppClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL) as c:
        yield c


@pytest.fixture
async def user(client: Client) -> dict[str, Any]:
    return await signed_in(client)


@pytest.fixture
async def intruder(client: Client, user: dict[str, Any]) -> Client:
    return await another_user(client)


async def _create(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"{API}/uploads", json=body, headers=await csrf_headers(client))


async def _started(client: httpx.AsyncClient, size: int, **kwargs: Any) -> dict[str, Any]:
    response = await start_upload(client, size, **kwargs)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _body(**fields: Any) -> dict[str, Any]:
    return {"file_name": "data.bin", "file_type": "application/octet-stream", "file_size": 1000, **fields}


# --- starting an upload --------------------------------------------------------------------


async def test_starting_an_upload_returns_its_plan_and_expiry(client: Client, user: dict[str, Any]) -> None:
    before = datetime.now(UTC)

    response = await start_upload(client, 10_000)

    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"upload_id", "chunk_size", "total_chunks", "expires_at"}
    assert (created["chunk_size"], created["total_chunks"]) == (4096, 3)
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert before + timedelta(hours=23) < expires_at <= datetime.now(UTC) + timedelta(hours=24)


async def test_every_upload_gets_its_own_id(client: Client, user: dict[str, Any]) -> None:
    first = await _started(client, 10)
    second = await _started(client, 10)

    assert first["upload_id"] != second["upload_id"]


@pytest.mark.parametrize(
    ("size", "chunk_size", "total_chunks"),
    [
        (1, 1, 1),
        (1023, 1023, 1),
        (4095, 4095, 1),
        (4096, 4096, 1),
        (4097, 4096, 2),
        (3 * 4096, 4096, 3),
        (10_000 * 4096, 4096, 10_000),
        (10_000 * 4096 + 1, 1024 * 1024, 40),
    ],
)
async def test_the_server_chooses_the_chunk_size(
    client: Client, user: dict[str, Any], size: int, chunk_size: int, total_chunks: int
) -> None:
    created = await _started(client, size)

    assert (created["chunk_size"], created["total_chunks"]) == (chunk_size, total_chunks)


@pytest.mark.parametrize(
    ("size", "proposed", "chunk_size", "total_chunks"),
    [
        (10_000, 1024, 1024, 10),
        (10_000, 3000, 3000, 4),
        (10_000, 10_000, 10_000, 1),
        (10_000, 64 * 1024 * 1024, 10_000, 1),
        (10_000 * 1024, 1024, 1024, 10_000),
    ],
)
async def test_a_proposed_chunk_size_within_bounds_is_accepted(
    client: Client, user: dict[str, Any], size: int, proposed: int, chunk_size: int, total_chunks: int
) -> None:
    created = await _started(client, size, chunk_size=proposed)

    assert (created["chunk_size"], created["total_chunks"]) == (chunk_size, total_chunks)


@pytest.mark.parametrize(
    ("size", "proposed", "message"),
    [
        (10_000, 1023, "chunk_size: must be at least 1024 bytes"),
        (10_000, 1, "chunk_size: must be at least 1024 bytes"),
        (10_000, 1024**3 + 1, f"chunk_size: must be at most {1024**3} bytes"),
        (10_000 * 1024 + 1, 1024, "chunk_size: too small, the file would need more than 10000 chunks"),
    ],
)
async def test_a_proposed_chunk_size_out_of_bounds_is_refused(
    client: Client, user: dict[str, Any], size: int, proposed: int, message: str
) -> None:
    response = await start_upload(client, size, chunk_size=proposed)

    assert response.status_code == 400
    assert response.json() == {"error": message}


@pytest.mark.parametrize("proposed", [0, -1, 4096.5, True, [4096]])
async def test_a_proposed_chunk_size_that_is_not_a_positive_integer_is_refused(
    client: Client, user: dict[str, Any], proposed: Any
) -> None:
    response = await _create(client, _body(chunk_size=proposed))

    assert response.status_code == 400
    assert "chunk_size" in response.json()["error"]


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("..\\..\\windows\\win.ini", ".._.._windows_win.ini"),
        ("/absolute/path.txt", "_absolute_path.txt"),
        ("  spaced.txt  ", "spaced.txt"),
        ("nul\x00and\nnewline.txt", "nulandnewline.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("re\u0301sume\u0301.pdf", "r\u00e9sum\u00e9.pdf"),
        ("\u65e5\u672c\u8a9e.txt", "\u65e5\u672c\u8a9e.txt"),
        ("x" * 255, "x" * 255),
    ],
)
async def test_the_file_name_is_cleaned(client: Client, user: dict[str, Any], name: str, stored: str) -> None:
    created = await _started(client, 10, name=name)

    status = (await client.get(f"{API}/uploads/{created['upload_id']}")).json()
    assert status["file_name"] == stored


@pytest.mark.parametrize("name", ["", " ", ".", "..", " .. ", "\x00", "\x00.\x00.", "\u202e\u202c", "x" * 256])
async def test_an_unusable_file_name_is_refused(client: Client, user: dict[str, Any], name: str) -> None:
    response = await start_upload(client, 10, name=name)

    assert response.status_code == 400
    assert response.json()["error"].startswith("file_name")
    assert (await client.get(f"{API}/uploads")).json() == {"uploads": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("file_type", "stored"),
    [
        ("image/png", "image/png"),
        ("Image/PNG", "image/png"),
        ("application/vnd.ms-excel", "application/vnd.ms-excel"),
        ("image/svg+xml", "image/svg+xml"),
        ("", "application/octet-stream"),
        ("  ", "application/octet-stream"),
    ],
)
async def test_the_file_type_is_a_lower_case_media_type(
    client: Client, user: dict[str, Any], file_type: str, stored: str
) -> None:
    created = await _started(client, 10, file_type=file_type)

    status = (await client.get(f"{API}/uploads/{created['upload_id']}")).json()
    assert status["file_type"] == stored


@pytest.mark.parametrize(
    "file_type",
    ["png", "image/", "/png", "image/png/x", "text/html; charset=utf-8", "*/*", "text/html\r\nx: y", "x" * 256],
)
async def test_a_file_type_that_is_not_a_media_type_is_refused(
    client: Client, user: dict[str, Any], file_type: str
) -> None:
    response = await start_upload(client, 10, file_type=file_type)

    assert response.status_code == 400
    assert response.json()["error"].startswith("file_type")


@pytest.mark.parametrize("size", [0, -1, -(2**62)])
async def test_a_file_size_below_one_byte_is_refused(client: Client, user: dict[str, Any], size: int) -> None:
    response = await start_upload(client, size)

    assert response.status_code == 400
    assert "file_size" in response.json()["error"]


@pytest.mark.parametrize("size", [1.5, 10.0, "10", True, None, [], "many", {"bytes": 10}])
async def test_a_file_size_that_is_not_an_integer_is_refused(client: Client, user: dict[str, Any], size: Any) -> None:
    response = await _create(client, _body(file_size=size))

    assert response.status_code == 400
    assert "file_size" in response.json()["error"]


async def test_a_file_size_up_to_the_maximum_is_accepted_and_one_byte_more_is_too_large(
    app_factory: AppFactory,
) -> None:
    async with AppClient(app_factory(**SMALL_CHUNKS, max_file_size=100_000), base_url=BASE_URL) as client:
        await signed_in(client)

        largest = await start_upload(client, 100_000)
        too_large = await start_upload(client, 100_001)

    assert largest.status_code == 201
    assert too_large.status_code == 413
    assert too_large.json() == {"error": "file_size: files may be at most 100000 bytes"}


@pytest.mark.parametrize("size", [2**63, 2**64, 10**30])
async def test_an_absurd_file_size_is_too_large(client: Client, user: dict[str, Any], size: int) -> None:
    response = await start_upload(client, size)

    assert response.status_code == 413
    assert (await client.get(f"{API}/uploads")).json() == {"uploads": [], "next_cursor": None}


async def test_the_default_maximum_file_size_is_10_gib(client: Client, user: dict[str, Any]) -> None:
    assert (await start_upload(client, 10 * 1024**3)).status_code == 201
    assert (await start_upload(client, 10 * 1024**3 + 1)).status_code == 413


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"file_name": "a", "file_type": "", "file_size": 1, "owner_id": "x"}, "unknown field `owner_id`"),
        ({"file_name": "a", "file_type": "", "file_size": 1, "status": "completed"}, "unknown field `status`"),
        ({"file_type": "", "file_size": 1}, "missing required field `file_name`"),
        ({"file_name": "a", "file_size": 1}, "missing required field `file_type`"),
        ({"file_name": "a", "file_type": ""}, "missing required field `file_size`"),
        ({"file_name": 7, "file_type": "", "file_size": 1}, "file_name"),
        ({"file_name": "a", "file_type": None, "file_size": 1}, "file_type"),
    ],
)
async def test_a_body_with_unknown_missing_or_mistyped_fields_is_refused(
    client: Client, user: dict[str, Any], body: dict[str, Any], message: str
) -> None:
    response = await _create(client, body)

    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.parametrize("content", [b"", b"{", b"not json", b"[]", b"null", b'"a"', b"{'file_name': 'a'}"])
async def test_a_body_that_is_not_a_json_object_is_refused(
    client: Client, user: dict[str, Any], content: bytes
) -> None:
    headers = {**await csrf_headers(client), "content-type": "application/json"}

    response = await client.post(f"{API}/uploads", content=content, headers=headers)

    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
async def test_a_body_that_is_not_declared_as_json_is_unsupported(
    client: Client, user: dict[str, Any], content_type: str
) -> None:
    headers = {**await csrf_headers(client), "content-type": content_type}

    response = await client.post(f"{API}/uploads", content=b'{"file_name": "a"}', headers=headers)

    assert response.status_code == 415
    assert response.json() == {"error": "expected Content-Type: application/json"}


async def test_a_body_without_content_type_is_unsupported(client: Client, user: dict[str, Any]) -> None:
    headers = await csrf_headers(client)

    response = await client.post(f"{API}/uploads", content=b'{"file_name": "a"}', headers=headers)

    assert response.status_code == 415


async def test_an_oversized_json_body_is_too_large(client: Client, user: dict[str, Any]) -> None:
    body = _body(file_name="a" * 100_000)

    response = await _create(client, body)

    assert response.status_code == 413
    assert (await client.get(f"{API}/uploads")).json() == {"uploads": [], "next_cursor": None}


async def test_starting_an_upload_needs_the_csrf_header(client: Client, user: dict[str, Any]) -> None:
    response = await client.post(f"{API}/uploads", json=_body())
    wrong = await client.post(f"{API}/uploads", json=_body(), headers={"x-csrf-token": "0" * 64})

    assert response.status_code == 403
    assert wrong.status_code == 403
    assert (await client.get(f"{API}/uploads")).json() == {"uploads": [], "next_cursor": None}


async def test_every_uploads_route_needs_a_signed_in_user(client: Client) -> None:
    headers = await csrf_headers(client)
    upload = f"{API}/uploads/{'0' * 32}"

    responses = [
        await client.post(f"{API}/uploads", json=_body(), headers=headers),
        await client.get(f"{API}/uploads"),
        await client.get(upload),
        await client.get(f"{upload}/chunks"),
        await client.delete(upload, headers=headers),
        await client.put(f"{upload}/chunks/1", content=b"x", headers={**headers, "x-chunk-hash": sha256_hex(b"x")}),
    ]

    assert [r.status_code for r in responses] == [401] * len(responses)
    assert all(r.json()["error"] for r in responses)


# --- quota ---------------------------------------------------------------------------------


@pytest.fixture
async def quota_client(app_factory: AppFactory) -> AsyncIterator[Client]:
    async with AppClient(app_factory(**SMALL_CHUNKS, user_quota_bytes=10_000), base_url=BASE_URL) as c:
        await signed_in(c)
        yield c


async def test_unfinished_uploads_count_against_the_quota(quota_client: Client) -> None:
    await _started(quota_client, 6_000)

    refused = await start_upload(quota_client, 4_001)
    exact = await start_upload(quota_client, 4_000)
    full = await start_upload(quota_client, 1)

    assert refused.status_code == 413
    assert refused.json() == {"error": "storage quota exceeded: 4000 of 10000 bytes left"}
    assert exact.status_code == 201
    assert full.status_code == 413


async def test_finished_files_count_against_the_quota(quota_client: Client) -> None:
    await upload_file(quota_client, b"q" * 6_000)

    refused = await start_upload(quota_client, 4_001)
    accepted = await start_upload(quota_client, 4_000)

    assert refused.status_code == 413
    assert accepted.status_code == 201


async def test_a_cancelled_upload_frees_its_quota(quota_client: Client) -> None:
    created = await _started(quota_client, 10_000)
    assert (await start_upload(quota_client, 1)).status_code == 413

    await quota_client.delete(f"{API}/uploads/{created['upload_id']}", headers=await csrf_headers(quota_client))

    assert (await start_upload(quota_client, 10_000)).status_code == 201


async def test_a_deleted_file_frees_its_quota(quota_client: Client) -> None:
    done = await upload_file(quota_client, b"q" * 10_000)
    assert (await start_upload(quota_client, 1)).status_code == 413

    deleted = await quota_client.delete(f"{API}/files/{done['file_id']}", headers=await csrf_headers(quota_client))

    assert deleted.status_code == 204
    assert (await start_upload(quota_client, 10_000)).status_code == 201


async def test_the_quota_is_per_user(quota_client: Client) -> None:
    await _started(quota_client, 10_000)
    other = await another_user(quota_client)

    response = await start_upload(other, 10_000)

    assert response.status_code == 201


async def test_a_file_larger_than_the_whole_quota_is_refused(quota_client: Client) -> None:
    response = await start_upload(quota_client, 10_001)

    assert response.status_code == 413
    assert "quota" in response.json()["error"]


# --- listing and status --------------------------------------------------------------------


async def test_a_new_upload_is_pending_with_no_progress(client: Client, user: dict[str, Any]) -> None:
    created = await _started(client, 10_000, name="movie.mkv", file_type="video/x-matroska")

    response = await client.get(f"{API}/uploads/{created['upload_id']}")

    assert response.status_code == 200
    status = response.json()
    assert status == {
        "upload_id": created["upload_id"],
        "file_name": "movie.mkv",
        "file_type": "video/x-matroska",
        "file_size": 10_000,
        "status": "pending",
        "progress": 0.0,
        "uploaded_chunks": 0,
        "total_chunks": 3,
        "chunk_size": 4096,
        "created_at": status["created_at"],
        "expires_at": created["expires_at"],
        "file_id": None,
        "failure_reason": None,
    }
    assert datetime.fromisoformat(status["created_at"]) < datetime.fromisoformat(status["expires_at"])


async def test_a_failed_upload_says_why(app_factory: AppFactory) -> None:
    app = app_factory(**SMALL_CHUNKS, stalled_after=timedelta(0))
    async with AppClient(app, base_url=BASE_URL) as client:
        await signed_in(client)
        data = bytes(range(256)) * 40
        created = (await start_upload(client, len(data))).json()
        chunks = chunks_of(data, created["chunk_size"])
        for n in (1, 3):
            assert (await put_chunk(client, created["upload_id"], n, chunks[n - 1])).status_code == 200
        services = services_from(app.state)
        # Chunk 2's storage event arrives, but its bytes are lost from storage.
        await services.finalizer.on_chunks_stored([ChunkStored(created["upload_id"], 2)])
        await services.janitor.sweep()

        failed = await wait_for_status(client, created["upload_id"], "failed")
        response = await client.get(f"{API}/uploads/{created['upload_id']}")

        assert response.status_code == 200
        assert response.json() == failed
        assert failed["failure_reason"] == "chunk 2 is missing"
        assert failed["file_id"] is None


async def test_progress_counts_stored_chunks(client: Client, user: dict[str, Any]) -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes: 3 chunks
    created = await _started(client, len(data))
    upload_id = created["upload_id"]
    chunks = chunks_of(data, created["chunk_size"])

    assert (await put_chunk(client, upload_id, 3, chunks[2])).status_code == 200
    status = (await client.get(f"{API}/uploads/{upload_id}")).json()

    assert status["uploaded_chunks"] == 1
    assert status["progress"] == 33.33
    assert status["status"] in {"pending", "in_progress"}


async def test_a_completed_upload_stays_readable_with_its_file_id(client: Client, user: dict[str, Any]) -> None:
    final = await upload_file(client, b"done" * 2000)

    status = (await client.get(f"{API}/uploads/{final['upload_id']}")).json()

    assert status["status"] == "completed"
    assert status["progress"] == 100
    assert status["uploaded_chunks"] == status["total_chunks"] == 2
    assert status["file_id"]
    assert (await client.get(f"{API}/files/{status['file_id']}")).status_code == 200


async def test_the_list_holds_only_the_callers_unfinished_unexpired_uploads(
    client: Client, user: dict[str, Any], intruder: Client, clock: FakeClock
) -> None:
    await _started(client, 10, name="expired.bin")
    pass_expiry(services_of(client), clock)
    for someone, email in ((client, user["email"]), (intruder, "eve@example.com")):
        assert (await login(someone, email)).status_code == 200  # their sign-ins expired too
    pending = await _started(client, 10, name="pending.bin")
    partly = await _started(client, 10_000, name="partly.bin")
    assert (await put_chunk(client, partly["upload_id"], 1, b"p" * 4096)).status_code == 200
    cancelled = await _started(client, 10, name="cancelled.bin")
    await client.delete(f"{API}/uploads/{cancelled['upload_id']}", headers=await csrf_headers(client))
    await upload_file(client, b"x" * 10, name="completed.bin")
    await _started(intruder, 10, name="someone-elses.bin")

    response = await client.get(f"{API}/uploads")

    assert response.status_code == 200
    uploads = response.json()["uploads"]
    assert sorted(u["file_name"] for u in uploads) == ["partly.bin", "pending.bin"]
    by_id = {u["upload_id"]: u for u in uploads}
    assert by_id[partly["upload_id"]]["uploaded_chunks"] == 1
    assert by_id[pending["upload_id"]]["status"] == "pending"


async def test_the_list_is_newest_first(client: Client, user: dict[str, Any]) -> None:
    names = [f"file-{i}.bin" for i in range(3)]
    for name in names:
        await _started(client, 10, name=name)

    uploads = (await client.get(f"{API}/uploads")).json()["uploads"]

    assert [u["file_name"] for u in uploads] == list(reversed(names))


async def pages_of(client: Client, path: str, limit: int) -> list[dict[str, Any]]:
    """Every page of a paged list, following ``next_cursor`` to the end."""
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        pages.append((await client.get(f"{API}{path}", params=params)).json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages


async def upload_pages(client: Client, limit: int) -> list[list[str]]:
    return [[u["file_name"] for u in page["uploads"]] for page in await pages_of(client, "/uploads", limit)]


async def test_the_list_comes_in_pages(client: Client, user: dict[str, Any]) -> None:
    for i in range(5):
        await _started(client, 10, name=f"file-{i}.bin")

    assert await upload_pages(client, 2) == [["file-4.bin", "file-3.bin"], ["file-2.bin", "file-1.bin"], ["file-0.bin"]]
    assert await upload_pages(client, 5) == [["file-4.bin", "file-3.bin", "file-2.bin", "file-1.bin", "file-0.bin"]]
    assert len((await client.get(f"{API}/uploads")).json()["uploads"]) == 5  # up to 100 without a limit


async def test_upload_pages_neither_repeat_nor_skip_while_uploads_start_and_end(
    client: Client, user: dict[str, Any]
) -> None:
    started = [await _started(client, 10, name=f"file-{i}.bin") for i in range(5)]
    first = (await client.get(f"{API}/uploads", params={"limit": 2})).json()

    # Between the pages: a new upload starts, and one on the first page and one after it end.
    await _started(client, 10, name="newer.bin")
    for gone in (started[4], started[1]):
        await client.delete(f"{API}/uploads/{gone['upload_id']}", headers=await csrf_headers(client))
    rest = (await client.get(f"{API}/uploads", params={"limit": 10, "cursor": first["next_cursor"]})).json()

    assert [u["file_name"] for u in first["uploads"]] == ["file-4.bin", "file-3.bin"]
    assert [u["file_name"] for u in rest["uploads"]] == ["file-2.bin", "file-0.bin"]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "-1", "101", "many", "1.5"])
async def test_an_upload_page_size_outside_1_to_100_is_refused(
    client: Client, user: dict[str, Any], limit: str
) -> None:
    response = await client.get(f"{API}/uploads", params={"limit": limit})

    assert response.status_code == 400


@pytest.mark.parametrize("cursor", ["", "nope", "WyJ4Il0", "WzEsMl0", "[" * 300, "é"])
async def test_an_upload_cursor_that_no_page_gave_out_is_refused(
    client: Client, user: dict[str, Any], cursor: str
) -> None:
    response = await client.get(f"{API}/uploads", params={"cursor": cursor})

    assert response.status_code == 400
    assert response.json() == {"error": "cursor: not a cursor from a previous page"}


async def test_a_finalizing_upload_is_still_listed(client: Client, user: dict[str, Any], clock: FakeClock) -> None:
    created = await _started(client, 10)
    await make_finalizing(services_of(client), clock, created["upload_id"])
    pass_expiry(services_of(client), clock)
    assert (await login(client, user["email"])).status_code == 200  # the sign-in expired too

    uploads = (await client.get(f"{API}/uploads")).json()["uploads"]

    assert [u["upload_id"] for u in uploads] == [created["upload_id"]]
    assert uploads[0]["status"] == "finalizing"


@pytest.mark.parametrize("upload_id", ["0" * 32, "nope", "..", "%2e%2e%2f%2e%2e", "'; DROP TABLE uploads; --"])
async def test_an_unknown_upload_is_not_found(client: Client, user: dict[str, Any], upload_id: str) -> None:
    status = await client.get(f"{API}/uploads/{upload_id}")
    chunks = await client.get(f"{API}/uploads/{upload_id}/chunks")
    cancel = await client.delete(f"{API}/uploads/{upload_id}", headers=await csrf_headers(client))

    assert [status.status_code, chunks.status_code, cancel.status_code] == [404, 404, 404]


async def test_another_users_upload_is_not_found_and_left_alone(
    client: Client, user: dict[str, Any], intruder: Client
) -> None:
    created = await _started(client, 10_000)
    upload_id = created["upload_id"]
    assert (await put_chunk(client, upload_id, 1, b"a" * 4096)).status_code == 200

    status = await intruder.get(f"{API}/uploads/{upload_id}")
    chunks = await intruder.get(f"{API}/uploads/{upload_id}/chunks")
    cancel = await intruder.delete(f"{API}/uploads/{upload_id}", headers=await csrf_headers(intruder))
    listed = await intruder.get(f"{API}/uploads")

    assert [status.status_code, chunks.status_code, cancel.status_code] == [404, 404, 404]
    assert status.json() == {"error": "upload not found"}
    assert listed.json() == {"uploads": [], "next_cursor": None}
    mine = (await client.get(f"{API}/uploads/{upload_id}")).json()
    assert mine["status"] in {"pending", "in_progress"}
    assert mine["uploaded_chunks"] == 1


# --- stored chunks -------------------------------------------------------------------------


async def test_the_chunk_list_names_the_stored_chunks_with_their_hashes(client: Client, user: dict[str, Any]) -> None:
    data = bytes(range(256)) * 64  # 16,384 bytes: 4 chunks
    created = await _started(client, len(data))
    chunks = chunks_of(data, created["chunk_size"])
    for n in (4, 1, 3):
        assert (await put_chunk(client, created["upload_id"], n, chunks[n - 1])).status_code == 200

    response = await client.get(f"{API}/uploads/{created['upload_id']}/chunks")

    assert response.status_code == 200
    assert response.json() == {
        "chunks": [1, 3, 4],
        "hashes": {str(n): sha256_hex(chunks[n - 1]) for n in (1, 3, 4)},
        "next_cursor": None,
    }


async def chunk_pages(client: Client, upload_id: str, limit: int) -> list[list[int]]:
    pages = await pages_of(client, f"/uploads/{upload_id}/chunks", limit)
    for page in pages:
        assert set(page["hashes"]) == {str(n) for n in page["chunks"]}
    return [page["chunks"] for page in pages]


async def test_the_chunk_list_comes_in_pages(client: Client, user: dict[str, Any]) -> None:
    data = bytes(range(256)) * 16 * 7  # seven 4 KiB chunks
    created = (await start_upload(client, len(data))).json()
    for n, chunk in enumerate(chunks_of(data, created["chunk_size"]), start=1):
        if n != 5:
            assert (await put_chunk(client, created["upload_id"], n, chunk)).status_code == 200

    assert await chunk_pages(client, created["upload_id"], 2) == [[1, 2], [3, 4], [6, 7]]
    assert await chunk_pages(client, created["upload_id"], 5) == [[1, 2, 3, 4, 6], [7]]
    assert await chunk_pages(client, created["upload_id"], 6) == [[1, 2, 3, 4, 6, 7]]


async def test_chunk_pages_stay_in_order_while_chunks_are_added(client: Client, user: dict[str, Any]) -> None:
    data = bytes(range(256)) * 16 * 6
    chunks = chunks_of(data, 4096)
    created = (await start_upload(client, len(data))).json()
    upload = created["upload_id"]
    for n in (1, 3, 5):
        assert (await put_chunk(client, upload, n, chunks[n - 1])).status_code == 200
    first = (await client.get(f"{API}/uploads/{upload}/chunks", params={"limit": 2})).json()

    # Chunks arrive between the pages: before the cursor, at it, and after it.
    for n in (2, 4, 6):
        assert (await put_chunk(client, upload, n, chunks[n - 1])).status_code == 200
    second = (await client.get(f"{API}/uploads/{upload}/chunks", params={"cursor": first["next_cursor"]})).json()

    assert first["chunks"] == [1, 3]
    assert second["chunks"] == [4, 5, 6]  # nothing repeated; chunk 2 came in behind the cursor
    assert second["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "many"])
async def test_a_chunk_page_size_outside_1_to_1000_is_refused(client: Client, user: dict[str, Any], limit: str) -> None:
    created = (await start_upload(client, 10)).json()

    response = await client.get(f"{API}/uploads/{created['upload_id']}/chunks", params={"limit": limit})

    assert response.status_code == 400


@pytest.mark.parametrize("cursor", ["", "nope", "WyJ4Il0", "WyIxIiwgIjIiXQ", "[" * 300])
async def test_a_chunk_cursor_that_no_page_gave_out_is_refused(
    client: Client, user: dict[str, Any], cursor: str
) -> None:
    created = (await start_upload(client, 10)).json()

    response = await client.get(f"{API}/uploads/{created['upload_id']}/chunks", params={"cursor": cursor})

    assert response.status_code == 400
    assert response.json() == {"error": "cursor: not a cursor from a previous page"}


async def test_a_new_upload_has_no_chunks(client: Client, user: dict[str, Any]) -> None:
    created = await _started(client, 10)

    response = await client.get(f"{API}/uploads/{created['upload_id']}/chunks")

    assert response.json() == {"chunks": [], "hashes": {}, "next_cursor": None}


# --- cancelling ----------------------------------------------------------------------------


async def test_cancelling_ends_the_upload_and_is_harmless_to_repeat(client: Client, user: dict[str, Any]) -> None:
    created = await _started(client, 10_000)
    url = f"{API}/uploads/{created['upload_id']}"
    assert (await put_chunk(client, created["upload_id"], 1, b"c" * 4096)).status_code == 200

    first = await client.delete(url, headers=await csrf_headers(client))
    second = await client.delete(url, headers=await csrf_headers(client))

    assert first.status_code == 204
    assert first.content == b""
    assert second.status_code == 204
    assert (await client.get(url)).json()["status"] == "cancelled"
    assert (await client.get(f"{API}/uploads")).json() == {"uploads": [], "next_cursor": None}
    late = await put_chunk(client, created["upload_id"], 2, b"c" * 4096)
    assert late.status_code == 410


async def test_cancelling_needs_the_csrf_header(client: Client, user: dict[str, Any]) -> None:
    created = await _started(client, 10)
    url = f"{API}/uploads/{created['upload_id']}"

    missing = await client.delete(url)
    wrong = await client.delete(url, headers={"x-csrf-token": "f" * 64})

    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert (await client.get(url)).json()["status"] == "pending"


async def test_a_completed_upload_cannot_be_cancelled(client: Client, user: dict[str, Any]) -> None:
    final = await upload_file(client, b"x" * 100)
    url = f"{API}/uploads/{final['upload_id']}"

    response = await client.delete(url, headers=await csrf_headers(client))

    assert response.status_code == 409
    assert response.json() == {"error": "upload is completed and can no longer be cancelled"}
    assert (await client.get(url)).json()["status"] == "completed"
    assert (await client.get(f"{API}/files/{final['file_id']}")).status_code == 200


async def test_a_finalizing_upload_cannot_be_cancelled(client: Client, user: dict[str, Any], clock: FakeClock) -> None:
    created = await _started(client, 10)
    await make_finalizing(services_of(client), clock, created["upload_id"])
    url = f"{API}/uploads/{created['upload_id']}"

    response = await client.delete(url, headers=await csrf_headers(client))

    assert response.status_code == 409
    assert (await client.get(url)).json()["status"] == "finalizing"


async def test_an_expired_upload_cannot_be_cancelled(client: Client, user: dict[str, Any], clock: FakeClock) -> None:
    created = await _started(client, 10)
    await make_expired(services_of(client), clock, created["upload_id"])
    assert (await login(client, user["email"])).status_code == 200  # the sign-in expired too
    url = f"{API}/uploads/{created['upload_id']}"

    response = await client.delete(url, headers=await csrf_headers(client))

    assert response.status_code == 410
    assert response.json() == {"error": "upload has expired"}
    assert (await client.get(url)).json()["status"] == "expired"


async def test_an_upload_past_its_expiry_cannot_be_cancelled_before_the_janitor_marks_it(
    client: Client, user: dict[str, Any], clock: FakeClock
) -> None:
    # Chunks are already refused with 410 at this point; cancelling must agree that it has expired.
    created = await _started(client, 10)
    pass_expiry(services_of(client), clock)
    assert (await login(client, user["email"])).status_code == 200  # the sign-in expired too
    url = f"{API}/uploads/{created['upload_id']}"

    response = await client.delete(url, headers=await csrf_headers(client))

    assert response.status_code == 410
    assert await status_of(services_of(client), created["upload_id"]) is UploadStatus.PENDING  # not marked yet
    assert (await client.get(url)).json()["status"] != "cancelled"


async def test_a_completed_upload_is_not_listed_and_its_chunks_are_gone(client: Client, user: dict[str, Any]) -> None:
    final = await upload_file(client, b"z" * 5000)

    assert (await client.get(f"{API}/uploads")).json() == {"uploads": [], "next_cursor": None}
    await eventually(lambda: chunks_deleted(services_of(client), final["upload_id"]))
