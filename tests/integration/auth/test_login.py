"""POST /api/v1/auth/login: cookies, one generic failure, rehash when argon2 parameters change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from litestar import Litestar

from lfusys.auth.passwords import Passwords
from lfusys.auth.records import User
from tests.conftest import AppFactory
from tests.support import API, BASE_URL, PASSWORD, AppClient, csrf_headers, login, register, services_of

Client = AppClient


def _set_cookie_headers(response_headers: list[str], name: str) -> str:
    matches = [header for header in response_headers if header.startswith(f"{name}=")]
    assert len(matches) == 1, response_headers
    return matches[0]


async def test_login_sets_httponly_lax_cookies_with_real_max_age(client: Client) -> None:
    await register(client, "ada@example.com")

    response = await login(client, "ADA@example.com")

    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.com"
    headers = response.headers.get_list("set-cookie")
    access = _set_cookie_headers(headers, "lfusys_access")
    refresh = _set_cookie_headers(headers, "lfusys_refresh")
    for cookie in (access, refresh):
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Path=/" in cookie
        assert "Secure" not in cookie
    assert "Max-Age=900" in access
    assert "Max-Age=2592000" in refresh
    assert "authorization" not in response.headers
    assert "eyJ" not in response.text  # tokens travel only in HttpOnly cookies


async def test_login_over_https_uses_secure_host_prefixed_cookies(app_factory: AppFactory) -> None:
    app = app_factory(public_url="https://files.example.org")
    async with AppClient(app, base_url="https://files.example.org") as client:
        headers = await csrf_headers(client, "__Host-lfusys_csrf")
        body = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
        assert (await client.post(f"{API}/auth/register", json=body, headers=headers)).status_code == 201

        response = await client.post(
            f"{API}/auth/login", json={"email": "ada@example.com", "password": PASSWORD}, headers=headers
        )

        assert response.status_code == 200
        cookies = response.headers.get_list("set-cookie")
        for name in ("__Host-lfusys_access", "__Host-lfusys_refresh"):
            cookie = _set_cookie_headers(cookies, name)
            assert "Secure" in cookie
            assert "HttpOnly" in cookie
            assert "Path=/" in cookie
            assert "Domain" not in cookie
        assert (await client.get(f"{API}/auth/me")).status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("nobody@example.com", PASSWORD),  # unknown email
        ("ada@example.com", "wrong password"),  # wrong password
        ("ada@example.com", ""),  # empty password
        ("not an email", PASSWORD),  # not even an address
        ("oauth@example.com", PASSWORD),  # account without a password
    ],
)
async def test_every_login_failure_is_the_same_401(client: Client, email: str, password: str) -> None:
    await register(client, "ada@example.com")
    oauth_only = User(
        id="oauth-user", email="oauth@example.com", name="O", password_hash=None, created_at=datetime.now(UTC)
    )
    await services_of(client).backend.users.create(oauth_only)

    response = await login(client, email, password)

    assert response.status_code == 401
    assert response.json() == {"error": "invalid email or password"}
    assert "lfusys_access" not in response.headers.get("set-cookie", "")


async def test_unknown_email_costs_one_password_verification_like_a_wrong_password(
    client: Client, app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same work either way: exactly one argon2 verify per failed login."""
    await register(client, "ada@example.com")
    passwords: Passwords = app.state["services"].auth._passwords
    calls: list[str | None] = []
    original = passwords.verify

    async def counting_verify(stored_hash: str | None, password: str) -> bool:
        calls.append(stored_hash)
        return await original(stored_hash, password)

    monkeypatch.setattr(passwords, "verify", counting_verify)

    await login(client, "nobody@example.com")
    await login(client, "ada@example.com", "wrong password")

    assert len(calls) == 2
    assert calls[0] is None  # verified against the decoy hash
    assert calls[1] is not None


async def password_hash(client: Client, email: str) -> str:
    user = await services_of(client).backend.users.get_by_email(email)
    assert user is not None
    assert user.password_hash is not None
    return user.password_hash


@pytest.mark.durable_only("the restarted app finds the account where the first one stored it")
async def test_login_rehashes_when_argon2_parameters_change(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(argon2_time_cost=1), base_url=BASE_URL) as client:
        await register(client, "ada@example.com")
        old_hash = await password_hash(client, "ada@example.com")
    assert "t=1" in old_hash

    async with AppClient(app_factory(argon2_time_cost=2), base_url=BASE_URL) as client:
        assert (await login(client, "ada@example.com")).status_code == 200
        new_hash = await password_hash(client, "ada@example.com")

    assert new_hash != old_hash
    assert "t=2" in new_hash
    async with AppClient(app_factory(argon2_time_cost=2), base_url=BASE_URL) as client:
        assert (await login(client, "ada@example.com")).status_code == 200
        assert (await login(client, "ada@example.com", "wrong password")).status_code == 401


async def test_login_with_unknown_fields_or_wrong_types_is_a_400(client: Client) -> None:
    headers = await csrf_headers(client)
    for body in (
        {"email": "a@example.com", "password": PASSWORD, "remember": True},
        {"email": 1, "password": "x"},
    ):
        response = await client.post(f"{API}/auth/login", json=body, headers=headers)
        assert response.status_code == 400
        assert "error" in response.json()


@pytest.mark.parametrize(
    "body",
    [
        b'{"email": "ada@example.com", "password": "\xff\xfe"}',  # not UTF-8
        b'{"email": "\xed\xa0\x80@example.com", "password": "x"}',  # a lone surrogate, encoded
        b"[" * 5000 + b"]" * 5000,  # nested thousands of levels deep
        b'{"email": "ada@example.com", "password": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"email": "ada@example.com", "password": 1e400}',
        b'{"email": "ada@example.com", "password": 12345678}',
        b'{"email": ["ada@example.com"], "password": "x"}',
    ],
)
async def test_a_malformed_login_body_is_a_clear_400(client: Client, body: bytes) -> None:
    response = await client.post(
        f"{API}/auth/login", content=body, headers={**await csrf_headers(client), "content-type": "application/json"}
    )

    assert response.status_code == 400
    assert set(response.json()) == {"error"}
