"""``X-HTTP-Method-Override`` under /api/v1/tus/, on every backend: a POST naming PATCH, HEAD or DELETE is
that method (its sign-in, CSRF and scope rules included), any other value is a 400 in tus's plain-text
shape, and outside the tus path (or on any method but POST) the header means nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.tus.conftest import token_headers
from tests.support import (
    API,
    AppClient,
    csrf_headers,
    download,
    wait_for_status,
)

TUS = f"{API}/tus/"
DATA = bytes(i * 7 % 253 for i in range(10_000))
VERSION = {"tus-resumable": "1.0.0"}
OCTETS = {"content-type": "application/offset+octet-stream"}


def override(method: str) -> dict[str, str]:
    return {"x-http-method-override": method}


async def created(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post(TUS, headers={**headers, "upload-length": str(len(DATA))})
    assert response.status_code == 201, response.text
    location: str = response.headers["location"]
    return location


async def offset_of(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> int:
    response = await client.head(url, headers=headers)
    assert response.status_code == 200, response.headers
    return int(response.headers["upload-offset"])


def patch_over_post(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], offset: int, body: bytes, method: str = "PATCH"
) -> httpx.Request:
    return client.build_request(
        "POST", url, headers={**headers, **OCTETS, "upload-offset": str(offset), **override(method)}, content=body
    )


@pytest.mark.parametrize("spelling", ["PATCH", "patch", " Patch "])
async def test_a_post_overridden_to_patch_appends(client: AppClient, bearer: dict[str, str], spelling: str) -> None:
    url = await created(client, bearer)

    response = await client.send(patch_over_post(client, url, bearer, 0, DATA[:4000], spelling))

    assert response.status_code == 204, response.text
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["upload-offset"] == "4000"
    assert await offset_of(client, url, bearer) == 4000
    assert (await client.send(patch_over_post(client, url, bearer, 4000, DATA[4000:]))).status_code == 204
    state = await wait_for_status(client, url.rsplit("/", 1)[1], "completed")
    assert (await download(client, state["file_id"])).content == DATA


async def test_a_post_overridden_to_head_answers_the_offset(client: AppClient, bearer: dict[str, str]) -> None:
    url = await created(client, bearer)
    assert (await client.patch(url, headers={**bearer, **OCTETS, "upload-offset": "0"}, content=DATA[:123])).is_success

    response = await client.post(url, headers={**bearer, **override("HEAD")})

    assert response.status_code == 200
    assert response.headers["upload-offset"] == "123"
    assert response.headers["upload-length"] == str(len(DATA))
    assert response.headers["cache-control"] == "no-store"
    assert response.content == b""


async def test_a_post_overridden_to_delete_terminates(client: AppClient, bearer: dict[str, str]) -> None:
    url = await created(client, bearer)

    response = await client.post(url, headers={**bearer, **override("delete")})

    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert (await client.head(url, headers=bearer)).status_code == 410
    assert (await client.get(f"{API}/uploads")).json()["uploads"] == []


@pytest.mark.parametrize("value", ["GET", "PUT", "POST", "OPTIONS", "", "PATCH, DELETE", "PATCHX"])
async def test_any_other_override_is_400_and_changes_nothing(
    client: AppClient, bearer: dict[str, str], value: str
) -> None:
    url = await created(client, bearer)

    for target in (url, TUS):
        response = await client.send(patch_over_post(client, target, bearer, 0, DATA[:100], value))

        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/plain")
        assert response.headers["tus-resumable"] == "1.0.0"
        assert "X-HTTP-Method-Override" in response.text

    assert await offset_of(client, url, bearer) == 0
    assert len((await client.get(f"{API}/uploads")).json()["uploads"]) == 1


async def test_two_override_lines_are_400(client: AppClient, bearer: dict[str, str]) -> None:
    url = await created(client, bearer)
    headers = [*bearer.items(), ("x-http-method-override", "PATCH"), ("x-http-method-override", "PATCH")]

    response = await client.post(url, headers=headers, content=b"")

    assert response.status_code == 400


async def test_sign_in_csrf_and_scopes_apply_to_the_overridden_method(
    client: AppClient, bearer: dict[str, str]
) -> None:
    url = await created(client, bearer)
    cookies_only = VERSION  # signed in by cookies, without the CSRF header

    # HEAD is safe: cookies are enough, as for a real HEAD. PATCH and DELETE are not: CSRF refuses them.
    assert (await client.post(url, headers={**cookies_only, **override("HEAD")})).status_code == 200
    assert (await client.send(patch_over_post(client, url, cookies_only, 0, DATA[:10]))).status_code == 403
    assert (await client.post(url, headers={**cookies_only, **override("DELETE")})).status_code == 403
    with_csrf = {**cookies_only, **await csrf_headers(client)}
    assert (await client.send(patch_over_post(client, url, with_csrf, 0, DATA[:10]))).status_code == 204

    # Nobody signed in: a HEAD is 401 (a real POST would be refused by CSRF first, with a 403).
    anonymous = AppClient(client.app)
    assert (await anonymous.post(url, headers={**VERSION, **override("HEAD")})).status_code == 401

    # A token without the upload scope may not do any of it.
    reader = {**await token_headers(client, ["read"]), **VERSION}
    assert (await client.post(url, headers={**reader, **override("HEAD")})).status_code == 403
    assert (await client.send(patch_over_post(client, url, reader, 10, DATA[10:20]))).status_code == 403
    assert (await client.post(url, headers={**reader, **override("DELETE")})).status_code == 403

    assert await offset_of(client, url, bearer) == 10


async def test_outside_the_tus_path_the_header_means_nothing(client: AppClient, bearer: dict[str, str]) -> None:
    made = await client.post(
        f"{API}/tokens",
        json={"name": "still a POST", "scopes": ["read"]},
        headers={**await csrf_headers(client), **override("DELETE")},
    )
    assert made.status_code == 201, made.text

    looks_like_tus = await client.post(f"{API}/tusx", headers={**bearer, **override("PUT")})
    assert looks_like_tus.status_code in (404, 405)
    assert "X-HTTP-Method-Override" not in looks_like_tus.text


async def test_only_a_post_is_overridden(client: AppClient, bearer: dict[str, str]) -> None:
    url = await created(client, bearer)

    response = await client.patch(
        url, headers={**bearer, **OCTETS, "upload-offset": "0", **override("DELETE")}, content=DATA[:50]
    )
    head = await client.head(url, headers={**bearer, **override("nonsense")})

    assert response.status_code == 204
    assert head.status_code == 200
    assert head.headers["upload-offset"] == "50"


async def test_a_real_server_answers_overridden_requests(live: httpx.AsyncClient) -> None:
    """Under uvicorn too: a body-less answer (HEAD, DELETE) to a POST is a complete response."""
    headers = {**VERSION, **await csrf_headers(live)}
    url = await created(live, headers)

    appended = await live.send(patch_over_post(live, url, headers, 0, DATA[:2048]))
    head = await live.post(url, headers={**headers, **override("HEAD")})
    terminated = await live.post(url, headers={**headers, **override("DELETE")})

    assert appended.status_code == 204, appended.text
    assert (head.status_code, head.headers["upload-offset"], head.content) == (200, "2048", b"")
    assert terminated.status_code == 204
    assert (await live.head(url, headers=headers)).status_code == 410
