"""/api/v1/files: the owner's finished files (list, metadata, signed download link, delete) and what the
link serves, with its headers and Range support, on every backend. Where the app serves the bytes itself
(local, memory) its signed content URL and every refusal of it; on aws, the presigned S3 URL."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from lfusys.files.records import FileRecord
from tests.conftest import AppFactory
from tests.support import (
    API,
    BASE_URL,
    SMALL_CHUNKS,
    AppClient,
    another_user,
    chunks_of,
    csrf_headers,
    follow_link,
    put_chunk,
    services_of,
    signed_in,
    start_upload,
    wait_for_status,
)

Client = AppClient
APP_SERVED = pytest.mark.only_on(
    "local", "memory", why="the app's own signed links and content route (on aws, S3 serves the bytes)"
)

# Three full 4 KiB chunks and 100 bytes: ranges can cross chunk boundaries.
DATA = bytes((i * 31 + i // 4096) % 256 for i in range(3 * 4096 + 100))
SIZE = len(DATA)


@pytest.fixture
async def client(app_factory: AppFactory) -> AsyncIterator[Client]:
    async with AppClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL) as c:
        yield c


@pytest.fixture
async def user(client: Client) -> dict[str, Any]:
    return await signed_in(client)


def _sharing_app_of(client: Client) -> Client:
    """A client with an empty cookie jar for the app ``client`` runs (same event loop, same lifespan)."""
    return AppClient(client.app, base_url=BASE_URL)


@pytest.fixture
async def intruder(client: Client, user: dict[str, Any]) -> Client:
    return await another_user(client)


@pytest.fixture
def stranger(client: Client) -> Client:
    """Whoever holds a download link: no cookies at all."""
    return _sharing_app_of(client)


async def _upload(
    client: httpx.AsyncClient, data: bytes = DATA, name: str = "data.bin", file_type: str = "application/x-test"
) -> str:
    """Upload ``data`` and return its file id."""
    response = await start_upload(client, len(data), name=name, file_type=file_type)
    assert response.status_code == 201, response.text
    created = response.json()
    for n, chunk in enumerate(chunks_of(data, created["chunk_size"]), start=1):
        assert (await put_chunk(client, created["upload_id"], n, chunk)).status_code == 200
    file_id: str = (await wait_for_status(client, created["upload_id"]))["file_id"]
    return file_id


@pytest.fixture
async def file_id(client: Client, user: dict[str, Any]) -> str:
    return await _upload(client)


async def _link(client: httpx.AsyncClient, file_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/files/{file_id}/download")
    assert response.status_code == 200, response.text
    link: dict[str, Any] = response.json()
    return link


async def _fetch(
    holder: httpx.AsyncClient, client: httpx.AsyncClient, file_id: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """The response to ``holder`` following the download link ``client`` (the owner) was given."""
    return await follow_link(holder, (await _link(client, file_id))["url"], headers)


async def _content_path(client: httpx.AsyncClient, file_id: str) -> str:
    """The signed URL's path and query (the test client serves any host)."""
    parts = urlsplit((await _link(client, file_id))["url"])
    return f"{parts.path}?{parts.query}"


def _signed_query(client: Client, file_id: str, expires: int) -> str:
    """A link signed with the server's own key, for an expiry of the test's choosing."""
    links = services_of(client).backend.links
    assert links is not None  # the local and memory backends' bytes are served by the app
    return urlencode({"expires": expires, "signature": links.signature(file_id, expires)})


async def _insert_files(client: Client, owner_id: str, count: int, *, same_time: bool = False) -> list[str]:
    """File records (no bytes), oldest first (or all created at one instant); enough for listing tests."""
    start = datetime.now(UTC) - timedelta(days=1)
    ids = [uuid.uuid4().hex for _ in range(count)]
    for i, file_id in enumerate(ids):
        record = FileRecord(
            id=file_id,
            owner_id=owner_id,
            upload_id=uuid.uuid4().hex,
            name=f"f{i}",
            type="text/plain",
            size=1,
            checksum="0" * 64,
            created_at=start if same_time else start + timedelta(seconds=i),
        )
        await services_of(client).backend.files.create_if_absent(record)
    return ids


async def _stored_size(client: Client, file_id: str) -> int | None:
    """The size of the file's bytes in the blob store (``None``: none stored)."""
    return await services_of(client).backend.blobs.file_size(file_id)


# --- listing ---------------------------------------------------------------------------------


async def test_a_new_user_has_no_files(client: Client, user: dict[str, Any]) -> None:
    response = await client.get(f"{API}/files")

    assert response.status_code == 200
    assert response.json() == {"files": [], "next_cursor": None}


async def test_files_are_listed_newest_first_with_their_metadata(client: Client, user: dict[str, Any]) -> None:
    first = await _upload(client, b"first", name="one.txt", file_type="text/plain")
    second = await _upload(client, DATA, name="two.bin")

    response = await client.get(f"{API}/files")

    files = response.json()["files"]
    assert [f["id"] for f in files] == [second, first]
    newest = files[0]
    assert set(newest) == {"id", "name", "type", "size", "checksum", "created_at"}
    assert (newest["name"], newest["type"], newest["size"]) == ("two.bin", "application/x-test", SIZE)
    assert len(newest["checksum"]) == 64
    assert datetime.fromisoformat(files[1]["created_at"]) <= datetime.fromisoformat(newest["created_at"])
    assert response.json()["next_cursor"] is None


async def test_pages_follow_each_other_without_gaps_or_repeats(client: Client, user: dict[str, Any]) -> None:
    ids = await _insert_files(client, user["id"], 5)

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"{API}/files", params=params)).json()
        pages.append([f["id"] for f in page["files"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    newest_first = list(reversed(ids))
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]


async def test_files_created_at_the_same_instant_are_each_listed_once(client: Client, user: dict[str, Any]) -> None:
    ids = await _insert_files(client, user["id"], 4, same_time=True)

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"{API}/files", params=params)).json()
        seen += [f["id"] for f in page["files"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))


async def test_a_page_that_exactly_ends_the_list_has_no_next_cursor(client: Client, user: dict[str, Any]) -> None:
    await _insert_files(client, user["id"], 4)

    first = (await client.get(f"{API}/files", params={"limit": 2})).json()
    second = (await client.get(f"{API}/files", params={"limit": 2, "cursor": first["next_cursor"]})).json()

    assert first["next_cursor"] is not None
    assert len(second["files"]) == 2
    assert second["next_cursor"] is None


async def test_the_default_page_holds_20_files_and_the_largest_100(client: Client, user: dict[str, Any]) -> None:
    await _insert_files(client, user["id"], 101)

    default = (await client.get(f"{API}/files")).json()
    largest = (await client.get(f"{API}/files", params={"limit": 100})).json()
    smallest = (await client.get(f"{API}/files", params={"limit": 1})).json()

    assert len(default["files"]) == 20
    assert default["next_cursor"] is not None
    assert len(largest["files"]) == 100
    assert largest["next_cursor"] is not None
    assert len(smallest["files"]) == 1


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1000000", "abc", "1.5", ""])
async def test_a_limit_outside_1_to_100_is_refused(client: Client, user: dict[str, Any], limit: str) -> None:
    response = await client.get(f"{API}/files?limit={limit}")

    assert response.status_code == 400
    assert "limit" in response.json()["error"]


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "not-a-cursor",
        "W10",  # base64 of []
        "WzEsIDJd",  # base64 of [1, 2]
        "bnVsbA",  # base64 of null
        "eyJhIjogMX0",  # base64 of {"a": 1}
        "WyIyMDI0LTAxLTAxIl0",  # base64 of ["2024-01-01"]
        "%00",
    ],
)
async def test_a_cursor_that_no_page_gave_out_is_refused(client: Client, user: dict[str, Any], cursor: str) -> None:
    response = await client.get(f"{API}/files?cursor={cursor}")

    assert response.status_code == 400
    assert response.json() == {"error": "cursor: not a cursor from a previous page"}


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 3000 + b"]" * 3000,  # nested thousands of levels deep
        b'["' + b"x" * 5000 + b'", "y"]',  # huge
        b'["2024-01-01T00:00:00+00:00", ' + b"[" * 100 + b"]" * 100 + b"]",
    ],
)
async def test_a_cursor_that_decodes_to_deep_or_huge_json_is_refused(
    client: Client, user: dict[str, Any], raw: bytes
) -> None:
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    response = await client.get(f"{API}/files", params={"cursor": cursor})

    assert response.status_code == 400
    assert response.json() == {"error": "cursor: not a cursor from a previous page"}


async def test_another_users_files_are_never_listed(client: Client, user: dict[str, Any], intruder: Client) -> None:
    await _insert_files(client, user["id"], 3)
    cursor = (await client.get(f"{API}/files", params={"limit": 1})).json()["next_cursor"]

    listed = (await intruder.get(f"{API}/files")).json()
    with_cursor = (await intruder.get(f"{API}/files", params={"cursor": cursor})).json()

    assert listed == {"files": [], "next_cursor": None}
    assert with_cursor == {"files": [], "next_cursor": None}


async def test_every_files_route_needs_a_signed_in_user(client: Client, file_id: str) -> None:
    headers = await csrf_headers(client)
    client.cookies.delete("lfusys_access")

    responses = [
        await client.get(f"{API}/files"),
        await client.get(f"{API}/files/{file_id}"),
        await client.get(f"{API}/files/{file_id}/download"),
        await client.delete(f"{API}/files/{file_id}", headers=headers),
    ]

    assert [r.status_code for r in responses] == [401] * 4


# --- metadata and link -----------------------------------------------------------------------


async def test_a_file_has_the_metadata_of_its_upload(client: Client, file_id: str) -> None:
    response = await client.get(f"{API}/files/{file_id}")

    assert response.status_code == 200
    record = response.json()
    assert record["id"] == file_id
    assert (record["name"], record["type"], record["size"]) == ("data.bin", "application/x-test", SIZE)
    assert record == (await client.get(f"{API}/files")).json()["files"][0]


@pytest.mark.parametrize(
    "unknown", ["9d4ce3f4f31b463ca9d71596a00733f6", "nope", "..", "%2e%2e%2f%2e%2e%2fsecrets.json"]
)
async def test_an_unknown_file_is_not_found(client: Client, user: dict[str, Any], unknown: str) -> None:
    metadata = await client.get(f"{API}/files/{unknown}")
    link = await client.get(f"{API}/files/{unknown}/download")
    deleted = await client.delete(f"{API}/files/{unknown}", headers=await csrf_headers(client))

    assert [metadata.status_code, link.status_code, deleted.status_code] == [404, 404, 404]


async def test_an_unknown_file_id_says_file_not_found(client: Client, user: dict[str, Any]) -> None:
    response = await client.get(f"{API}/files/{uuid.uuid4().hex}")

    assert response.json() == {"error": "file not found"}


@APP_SERVED
async def test_the_download_link_is_signed_and_expires_in_an_hour(client: Client, file_id: str) -> None:
    link = await _link(client, file_id)

    assert set(link) == {"url", "file_name", "file_type", "expires_in_seconds"}
    assert (link["file_name"], link["file_type"]) == ("data.bin", "application/x-test")
    assert link["expires_in_seconds"] == 3600
    parts = urlsplit(link["url"])
    assert (parts.scheme, parts.netloc) == ("", "")  # relative: valid on whatever host the client used
    assert parts.path == f"{API}/files/{file_id}/content"
    query = parse_qs(parts.query)
    assert set(query) == {"expires", "signature"}
    assert abs(int(query["expires"][0]) - (datetime.now(UTC).timestamp() + 3600)) < 300
    assert len(query["signature"][0]) == 64


@pytest.mark.only_on("aws", why="S3's presigned links")
async def test_the_download_link_is_presigned_by_s3_for_an_hour_and_refused_when_tampered_with(
    client: Client, file_id: str
) -> None:
    link = await _link(client, file_id)
    parts = urlsplit(link["url"])
    query = parse_qs(parts.query)
    signature = query["X-Amz-Signature"][0]
    tampered = link["url"].replace(f"X-Amz-Signature={signature}", f"X-Amz-Signature={_flip(signature)}")

    genuine = await follow_link(client, link["url"])
    refused = await follow_link(client, tampered)

    # Served by S3 from its own origin: the bytes never run in the app's.
    assert f"{parts.scheme}://{parts.netloc}" == os.environ["AWS_ENDPOINT_URL"]
    assert parts.path.endswith(f"/files/{file_id}")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["3600"]
    assert link["expires_in_seconds"] == 3600
    assert (genuine.status_code, genuine.content) == (200, DATA)
    assert genuine.headers["content-type"].split(";")[0] == "application/x-test"
    assert refused.status_code == 403
    assert DATA[:16] not in refused.content


@APP_SERVED
async def test_the_download_link_works_on_any_host_the_server_is_reached_on(app_factory: AppFactory) -> None:
    app = app_factory(**SMALL_CHUNKS, public_url="http://files.example.org:8080/")
    async with AppClient(app, base_url="http://10.1.2.3:9000") as client:
        await signed_in(client)
        file_id = await _upload(client, b"abc")

        url = (await _link(client, file_id))["url"]
        content = await client.get(url)

    assert url.startswith(f"{API}/files/{file_id}/content?expires=")
    assert content.content == b"abc"


async def test_another_users_file_is_not_found_and_left_alone(client: Client, file_id: str, intruder: Client) -> None:
    metadata = await intruder.get(f"{API}/files/{file_id}")
    link = await intruder.get(f"{API}/files/{file_id}/download")
    deleted = await intruder.delete(f"{API}/files/{file_id}", headers=await csrf_headers(intruder))

    assert [metadata.status_code, link.status_code, deleted.status_code] == [404, 404, 404]
    assert (await client.get(f"{API}/files/{file_id}")).status_code == 200
    assert await _stored_size(client, file_id) == SIZE
    assert (await _fetch(client, client, file_id)).content == DATA


# --- content ---------------------------------------------------------------------------------


async def test_the_link_serves_the_bytes_to_whoever_holds_it(client: Client, file_id: str, stranger: Client) -> None:
    response = await _fetch(stranger, client, file_id)

    assert "cookie" not in response.request.headers
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["content-type"].split(";")[0] == "application/x-test"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-disposition"] == "attachment; filename=\"data.bin\"; filename*=UTF-8''data.bin"
    assert "content-range" not in response.headers


@APP_SERVED
async def test_served_bytes_cannot_run_in_the_apps_origin(client: Client, user: dict[str, Any]) -> None:
    file_id = await _upload(client, b"<script>alert(document.cookie)</script>", name="x.html", file_type="text/html")

    response = await client.get(await _content_path(client, file_id))

    assert response.headers["content-security-policy"].startswith("sandbox")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "no-store" in response.headers["cache-control"]


async def test_a_unicode_name_is_offered_with_an_ascii_fallback(client: Client, user: dict[str, Any]) -> None:
    file_id = await _upload(client, b"cv", name='R\u00e9sum\u00e9 "final".pdf', file_type="application/pdf")

    response = await _fetch(client, client, file_id)

    assert response.headers["content-disposition"] == (
        "attachment; filename=\"R_sum_ _final_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22.pdf"
    )


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-9", 0, 9),  # the first bytes
        ("bytes=4090-4200", 4090, 4200),  # across a chunk boundary
        ("bytes=4096-8191", 4096, 8191),  # exactly the second chunk
        ("bytes=100-12387", 100, SIZE - 1),  # across every chunk
        ("bytes=12000-", 12000, SIZE - 1),  # from an offset to the end
        ("bytes=-100", SIZE - 100, SIZE - 1),  # the last bytes
        ("bytes=-1", SIZE - 1, SIZE - 1),
        ("bytes=-99999", 0, SIZE - 1),  # a suffix longer than the file
        ("bytes=12000-99999", 12000, SIZE - 1),  # an end past the file
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),  # the last byte
    ],
)
async def test_one_range_is_served_as_partial_content(
    client: Client, file_id: str, stranger: Client, header: str, start: int, end: int
) -> None:
    response = await _fetch(stranger, client, file_id, {"range": header})

    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["accept-ranges"] == "bytes"


@APP_SERVED
@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=-5,0-1", "bytes=0-0, 4096-4096"])
async def test_several_ranges_are_answered_with_the_whole_file(
    client: Client, file_id: str, stranger: Client, header: str
) -> None:
    response = await stranger.get(await _content_path(client, file_id), headers={"range": header})

    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


@APP_SERVED
@pytest.mark.parametrize(
    "header",
    [
        f"bytes={SIZE}-",  # starts at the end
        f"bytes={SIZE}-{SIZE + 10}",  # starts past the end
        "bytes=10-9",  # ends before it starts
        "bytes=-0",  # an empty suffix
        "bytes=",
        "bytes=-",
        "bytes=abc",
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes 0-9",
        "0-9",
    ],
)
async def test_a_malformed_or_unsatisfiable_range_is_refused_with_the_size(
    client: Client, file_id: str, stranger: Client, header: str
) -> None:
    response = await stranger.get(await _content_path(client, file_id), headers={"range": header})

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert "error" in response.json()
    assert DATA[:16] not in response.content


@APP_SERVED
@pytest.mark.parametrize(
    ("header", "status", "content"),
    [
        ("bytes=0-" + "9" * 5000, 206, DATA),
        ("bytes=-" + "9" * 5000, 206, DATA),
        ("bytes=" + "9" * 5000 + "-", 416, None),
    ],
)
async def test_a_range_with_thousands_of_digits_is_answered(
    client: Client, file_id: str, stranger: Client, header: str, status: int, content: bytes | None
) -> None:
    response = await stranger.get(await _content_path(client, file_id), headers={"range": header})

    assert response.status_code == status
    if content is not None:
        assert response.content == content


@APP_SERVED
async def test_a_range_in_an_unknown_unit_is_ignored(client: Client, file_id: str, stranger: Client) -> None:
    # RFC 9110 §14.2: an origin server MUST ignore a Range header field with a unit it does not understand.
    response = await stranger.get(await _content_path(client, file_id), headers={"range": "items=0-9"})

    assert response.status_code == 200
    assert response.content == DATA


async def test_a_range_of_a_one_byte_file(client: Client, user: dict[str, Any], stranger: Client) -> None:
    file_id = await _upload(client, b"!")

    whole = await _fetch(stranger, client, file_id, {"range": "bytes=0-"})
    suffix = await _fetch(stranger, client, file_id, {"range": "bytes=-10"})
    past = await _fetch(stranger, client, file_id, {"range": "bytes=1-"})

    assert (whole.status_code, whole.content, whole.headers["content-range"]) == (206, b"!", "bytes 0-0/1")
    assert (suffix.status_code, suffix.content) == (206, b"!")
    assert (past.status_code, past.headers["content-range"]) == (416, "bytes */1")


# --- refused links ---------------------------------------------------------------------------


def _with(path: str, **changes: str) -> str:
    parts = urlsplit(path)
    query = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    return f"{parts.path}?{urlencode(query | changes)}"


def _flip(text: str, index: int = 0) -> str:
    return text[:index] + ("0" if text[index] != "0" else "1") + text[index + 1 :]


@APP_SERVED
async def test_a_tampered_signature_is_forbidden(client: Client, file_id: str, stranger: Client) -> None:
    path = await _content_path(client, file_id)
    signature = parse_qs(urlsplit(path).query)["signature"][0]

    tampered = [
        _with(path, signature=_flip(signature)),
        _with(path, signature=_flip(signature, 63)),
        _with(path, signature=signature.upper()),
        _with(path, signature=signature[:-1]),
        _with(path, signature=signature + "0"),
        _with(path, signature=""),
        _with(path, signature="x" * 10_000),
        _with(path, signature="é" * 64),
        _with(path, signature=signature[:-1] + "\u0661"),  # an Arabic-Indic digit one
    ]
    responses = [await stranger.get(url) for url in tampered]

    assert [r.status_code for r in responses] == [403] * len(tampered)
    assert responses[0].json() == {"error": "invalid download link"}
    assert all(DATA[:16] not in r.content for r in responses)


@APP_SERVED
async def test_a_tampered_expiry_is_forbidden(client: Client, file_id: str, stranger: Client) -> None:
    path = await _content_path(client, file_id)
    expires = int(parse_qs(urlsplit(path).query)["expires"][0])

    later = await stranger.get(_with(path, expires=str(expires + 1)))
    much_later = await stranger.get(_with(path, expires=str(expires + 10**9)))
    earlier = await stranger.get(_with(path, expires=str(expires - 1)))

    assert [later.status_code, much_later.status_code, earlier.status_code] == [403, 403, 403]


@APP_SERVED
@pytest.mark.parametrize("expires", ["9" * 5000, "soon", "1.5", ""])
async def test_an_expiry_that_is_not_a_plain_number_is_refused(
    client: Client, file_id: str, stranger: Client, expires: str
) -> None:
    response = await stranger.get(_with(await _content_path(client, file_id), expires=expires))

    assert response.status_code in {400, 403}
    assert DATA[:16] not in response.content


@APP_SERVED
async def test_a_link_for_one_file_does_not_open_another(client: Client, file_id: str, stranger: Client) -> None:
    other_id = await _upload(client, b"other bytes")
    query = urlsplit(await _content_path(client, other_id)).query

    response = await stranger.get(f"{API}/files/{file_id}/content?{query}")

    assert response.status_code == 403


@APP_SERVED
async def test_an_expired_link_is_forbidden(client: Client, file_id: str, stranger: Client) -> None:
    an_hour_ago = int(datetime.now(UTC).timestamp()) - 3600
    assert (await stranger.get(f"{API}/files/{file_id}/content?{_signed_query(client, file_id, 10**10)}")).is_success

    response = await stranger.get(f"{API}/files/{file_id}/content?{_signed_query(client, file_id, an_hour_ago)}")

    assert response.status_code == 403
    assert response.json() == {"error": "download link expired"}


@APP_SERVED
@pytest.mark.parametrize(
    "query",
    ["", "expires=1", "signature=" + "0" * 64, "expires=soon&signature=" + "0" * 64, "expires=&signature=x"],
)
async def test_a_link_missing_its_expiry_or_signature_is_refused(
    client: Client, file_id: str, stranger: Client, query: str
) -> None:
    response = await stranger.get(f"{API}/files/{file_id}/content?{query}")

    assert response.status_code == 400
    assert DATA[:16] not in response.content


@APP_SERVED
async def test_a_genuine_link_to_a_missing_file_is_not_found(client: Client, stranger: Client) -> None:
    missing = uuid.uuid4().hex
    query = _signed_query(client, missing, int(datetime.now(UTC).timestamp()) + 600)

    response = await stranger.get(f"{API}/files/{missing}/content?{query}")

    assert response.status_code == 404
    assert response.json() == {"error": "file not found"}


# --- delete ----------------------------------------------------------------------------------


async def test_deleting_a_file_removes_its_row_and_bytes(client: Client, file_id: str, stranger: Client) -> None:
    url = (await _link(client, file_id))["url"]
    assert await _stored_size(client, file_id) == SIZE

    response = await client.delete(f"{API}/files/{file_id}", headers=await csrf_headers(client))

    assert response.status_code == 204
    assert response.content == b""
    assert await _stored_size(client, file_id) is None
    assert await services_of(client).backend.files.get(file_id) is None
    assert (await client.get(f"{API}/files/{file_id}")).status_code == 404
    assert (await client.get(f"{API}/files/{file_id}/download")).status_code == 404
    assert (await client.get(f"{API}/files")).json() == {"files": [], "next_cursor": None}
    old_link = await follow_link(stranger, url)
    assert old_link.status_code == 404
    assert DATA[:16] not in old_link.content


async def test_deleting_a_file_twice_is_not_found_the_second_time(client: Client, file_id: str) -> None:
    first = await client.delete(f"{API}/files/{file_id}", headers=await csrf_headers(client))
    second = await client.delete(f"{API}/files/{file_id}", headers=await csrf_headers(client))

    assert (first.status_code, second.status_code) == (204, 404)


async def test_deleting_one_file_leaves_the_others(client: Client, file_id: str) -> None:
    kept = await _upload(client, b"keep me")

    await client.delete(f"{API}/files/{file_id}", headers=await csrf_headers(client))

    assert [f["id"] for f in (await client.get(f"{API}/files")).json()["files"]] == [kept]
    assert (await _fetch(client, client, kept)).content == b"keep me"
    assert [await _stored_size(client, f) for f in (file_id, kept)] == [None, len(b"keep me")]


async def test_deleting_a_file_needs_the_csrf_header(client: Client, file_id: str) -> None:
    missing = await client.delete(f"{API}/files/{file_id}")
    wrong = await client.delete(f"{API}/files/{file_id}", headers={"x-csrf-token": "0" * 64})

    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert (await client.get(f"{API}/files/{file_id}")).status_code == 200
    assert await _stored_size(client, file_id) == SIZE
