"""Personal API tokens on every backend: a signed-in browser makes, lists and revokes them; a token
authenticates API calls within its scopes, without CSRF and without looking at cookies; revoked or
expired is 401 at once; rate limits count per token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import AppFactory
from tests.support import API, AppClient, FakeClock, csrf_headers, random_bytes, signed_in, upload_file

EVERY_SCOPE = ["upload", "read", "delete"]


async def make_token(client: AppClient, scopes: list[str] | None = None, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"{API}/tokens",
        json={"name": "laptop", "scopes": EVERY_SCOPE if scopes is None else scopes, **body},
        headers=await csrf_headers(client),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {token['token']}"}


def script(client: AppClient) -> AppClient:
    """A client of the same app with no cookies at all, as a script would be."""
    return AppClient(client.app)


async def test_a_token_is_shown_once_listed_without_its_secret_and_acts_as_its_user(client: AppClient) -> None:
    user = await signed_in(client)

    created = await make_token(client, ["read"], expires_in_days=30)
    listed = (await client.get(f"{API}/tokens")).json()["tokens"]
    me = await script(client).get(f"{API}/auth/me", headers=bearer(created))

    assert created["token"].startswith("lfusys_")
    assert created["scopes"] == ["read"]
    assert created["expires_at"] is not None
    assert [token["id"] for token in listed] == [created["id"]]
    assert "token" not in listed[0]
    assert created["token"] not in str(listed)
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    used = (await client.get(f"{API}/tokens")).json()["tokens"][0]
    assert used["last_used_at"] is not None


# (method, path, scope): every API route a token may use.
ROUTES = [
    ("POST", "/uploads", "upload"),
    ("GET", "/uploads", "upload"),
    ("GET", "/uploads/{upload_id}", "upload"),
    ("GET", "/uploads/{upload_id}/chunks", "upload"),
    ("PUT", "/uploads/{upload_id}/chunks/1", "upload"),
    ("DELETE", "/uploads/{upload_id}", "upload"),
    ("GET", "/files", "read"),
    ("GET", "/files/{file_id}", "read"),
    ("GET", "/files/{file_id}/download", "read"),
    ("DELETE", "/files/{file_id}", "delete"),
]


async def call(client: AppClient, method: str, path: str, headers: dict[str, str], ids: dict[str, str]) -> int:
    body: dict[str, Any] = {}
    if method == "POST":
        body["json"] = {"file_name": "a.bin", "file_type": "application/octet-stream", "file_size": 10}
    if method == "PUT":
        body["content"] = b"x" * 10
        headers = {**headers, "x-chunk-hash": "0" * 64}
    response = await client.request(method, f"{API}{path.format(**ids)}", headers=headers, **body)
    return response.status_code


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
async def test_every_route_takes_a_token_only_with_its_scope(
    client: AppClient, method: str, path: str, scope: str
) -> None:
    await signed_in(client)
    done = await upload_file(client, random_bytes(100))
    started = await client.post(
        f"{API}/uploads",
        json={"file_name": "b.bin", "file_type": "application/octet-stream", "file_size": 10},
        headers=await csrf_headers(client),
    )
    ids = {"upload_id": started.json()["upload_id"], "file_id": done["file_id"]}
    without = await make_token(client, [other for other in EVERY_SCOPE if other != scope])
    with_scope = await make_token(client, [scope])

    refused = await call(script(client), method, path, bearer(without), ids)
    allowed = await call(script(client), method, path, bearer(with_scope), ids)

    assert refused == 403
    assert allowed not in {401, 403}, allowed


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/tokens"), ("GET", "/tokens"), ("DELETE", "/tokens/abc"), ("PUT", "/auth/password")],
)
async def test_a_token_cannot_manage_tokens_or_the_account(client: AppClient, method: str, path: str) -> None:
    await signed_in(client)
    token = await make_token(client)

    response = await script(client).request(
        method, f"{API}{path}", headers=bearer(token), json={"name": "x", "scopes": ["read"], "password": "p" * 12}
    )

    assert response.status_code == 403
    assert "browser session" in response.json()["error"]


async def test_a_revoked_token_is_refused_at_once(client: AppClient) -> None:
    await signed_in(client)
    token = await make_token(client)
    assert (await script(client).get(f"{API}/files", headers=bearer(token))).status_code == 200

    revoked = await client.delete(f"{API}/tokens/{token['id']}", headers=await csrf_headers(client))
    after = await script(client).get(f"{API}/files", headers=bearer(token))

    assert revoked.status_code == 204
    assert after.status_code == 401
    assert (await client.get(f"{API}/tokens")).json()["tokens"] == []
    again = await client.delete(f"{API}/tokens/{token['id']}", headers=await csrf_headers(client))
    assert again.status_code == 404


async def test_another_users_token_cannot_be_revoked(client: AppClient) -> None:
    await signed_in(client)
    token = await make_token(client)
    eve = AppClient(client.app)
    await signed_in(eve, "eve@example.com")

    response = await eve.delete(f"{API}/tokens/{token['id']}", headers=await csrf_headers(eve))

    assert response.status_code == 404
    assert (await script(client).get(f"{API}/files", headers=bearer(token))).status_code == 200


async def test_an_expired_token_is_refused(client: AppClient, clock: FakeClock) -> None:
    await signed_in(client)
    token = await make_token(client, expires_in_days=1)
    clock.advance(timedelta(days=1, seconds=1))

    response = await script(client).get(f"{API}/files", headers=bearer(token))

    assert response.status_code == 401


@pytest.mark.parametrize(
    "presented",
    [
        "lfusys_",
        "not-a-token",
        "lfusys_0123456789abcdef_" + "A" * 43,  # well-formed, never issued
        "lfusys_0123456789abcdef_short",
        "",
    ],
)
async def test_a_token_that_is_not_ours_is_401_and_cookies_do_not_rescue_it(client: AppClient, presented: str) -> None:
    await signed_in(client)  # the client holds a valid session cookie

    response = await client.get(f"{API}/files", headers={"authorization": f"Bearer {presented}"})

    assert response.status_code == 401


async def test_a_secret_of_one_token_does_not_open_another(client: AppClient) -> None:
    await signed_in(client)
    first, second = await make_token(client), await make_token(client)
    mixed = f"lfusys_{second['id']}_{first['token'].split('_', 2)[2]}"

    response = await script(client).get(f"{API}/files", headers={"authorization": f"Bearer {mixed}"})

    assert response.status_code == 401


async def test_bearer_writes_need_no_csrf_token(client: AppClient) -> None:
    await signed_in(client)
    token = await make_token(client)

    started = await script(client).post(
        f"{API}/uploads",
        json={"file_name": "a.bin", "file_type": "application/octet-stream", "file_size": 10},
        headers=bearer(token),
    )

    assert started.status_code == 201


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"name": "   ", "scopes": ["read"]}, "name"),
        ({"name": "x" * 101, "scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": []}, "scope"),
        ({"name": "x", "scopes": ["admin"]}, "admin"),
        ({"name": "x", "scopes": ["read", "read"]}, "once"),
        ({"name": "x", "scopes": ["read"], "expires_in_days": 0}, "expires_in_days"),
        ({"name": "x", "scopes": ["read"], "expires_in_days": 3651}, "expires_in_days"),
        ({"name": "x", "scopes": ["read"], "expires_in_days": "30"}, "expires_in_days"),
        ({"name": "x", "scopes": ["read"], "admin": True}, "admin"),
        ({"scopes": ["read"]}, "name"),
    ],
)
async def test_a_bad_token_request_is_400_and_makes_nothing(client: AppClient, body: dict[str, Any], why: str) -> None:
    await signed_in(client)

    response = await client.post(f"{API}/tokens", json=body, headers=await csrf_headers(client))

    assert response.status_code == 400, response.text
    assert why in response.json()["error"]
    assert (await client.get(f"{API}/tokens")).json()["tokens"] == []


async def test_managing_tokens_needs_a_signed_in_browser_with_its_csrf_token(client: AppClient) -> None:
    anonymous = await client.get(f"{API}/tokens")
    await signed_in(client)
    no_csrf = await client.post(f"{API}/tokens", json={"name": "x", "scopes": ["read"]})

    assert anonymous.status_code == 401
    assert no_csrf.status_code == 403


async def test_each_token_has_its_own_rate_limit(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(rate_limit_api=3)) as client:
        await signed_in(client)
        first, second = await make_token(client), await make_token(client)
        firsts = [(await script(client).get(f"{API}/files", headers=bearer(first))).status_code for _ in range(4)]
        seconds = [(await script(client).get(f"{API}/files", headers=bearer(second))).status_code for _ in range(3)]

    assert firsts == [200, 200, 200, 429]
    assert seconds == [200, 200, 200]
