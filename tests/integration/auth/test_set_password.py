"""A signed-in user sets a password (an account made through a provider, so email sign-in works too) or
changes it (with the current one); on every backend."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lfusys.auth.oauth import ProviderIdentity
from tests.support import API, PASSWORD, AppClient, csrf_headers, login, services_of, signed_in

NEW_PASSWORD = "a new password, long enough"
OCTO = ProviderIdentity(provider="github", subject="12345", email="octo@example.com", email_verified=True, name="Octo")


async def set_password(client: AppClient, body: Any) -> httpx.Response:
    return await client.put(f"{API}/auth/password", json=body, headers=await csrf_headers(client))


async def signed_in_through_github(client: AppClient) -> None:
    """``client`` holds the cookies of a sign-in with GitHub (an account made by it: no password)."""
    session = await services_of(client).auth.sign_in_with_identity(OCTO)
    for cookie in services_of(client).cookies.session_cookies(session.access_token, session.refresh_token):
        assert cookie.value is not None
        client.cookies.set(cookie.key, cookie.value)


async def test_an_account_made_by_a_provider_sets_its_first_password_and_then_signs_in_with_email(
    client: AppClient,
) -> None:
    await signed_in_through_github(client)
    assert (await client.get(f"{API}/auth/me")).json()["providers"] == ["github"]
    assert (await login(AppClient(client.app), "octo@example.com", NEW_PASSWORD)).status_code == 401

    response = await set_password(client, {"password": NEW_PASSWORD})

    assert response.status_code == 204, response.text
    # At once, on the same sign-in: the cached profile was refreshed.
    assert (await client.get(f"{API}/auth/me")).json()["providers"] == ["password", "github"]
    other_browser = AppClient(client.app)
    assert (await login(other_browser, "octo@example.com", NEW_PASSWORD)).status_code == 200


async def test_a_password_is_changed_only_with_the_current_one(client: AppClient) -> None:
    await signed_in(client)

    missing = await set_password(client, {"password": NEW_PASSWORD})
    wrong = await set_password(client, {"password": NEW_PASSWORD, "current_password": "not the password"})
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert "current_password" in wrong.json()["error"]
    assert (await login(AppClient(client.app), "ada@example.com", PASSWORD)).status_code == 200  # unchanged

    changed = await set_password(client, {"password": NEW_PASSWORD, "current_password": PASSWORD})

    assert changed.status_code == 204, changed.text
    assert (await login(AppClient(client.app), "ada@example.com", PASSWORD)).status_code == 401
    assert (await login(AppClient(client.app), "ada@example.com", NEW_PASSWORD)).status_code == 200


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"password": "short"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({}, "password"),
        ({"password": 12345678}, "password"),
        ({"password": NEW_PASSWORD, "current_password": "y" * 129}, "current_password"),
        ({"password": NEW_PASSWORD, "unexpected": 1}, "unexpected"),
        ([NEW_PASSWORD], "object"),
    ],
)
async def test_a_bad_body_is_400_and_changes_nothing(client: AppClient, body: Any, why: str) -> None:
    await signed_in_through_github(client)

    response = await set_password(client, body)

    assert response.status_code == 400, response.text
    assert why in response.json()["error"]
    assert (await client.get(f"{API}/auth/me")).json()["providers"] == ["github"]


async def test_only_a_signed_in_browser_with_its_csrf_token_sets_a_password(client: AppClient) -> None:
    anonymous = await set_password(client, {"password": NEW_PASSWORD})
    assert anonymous.status_code == 401

    await signed_in_through_github(client)
    no_csrf = await client.put(f"{API}/auth/password", json={"password": NEW_PASSWORD})
    not_json = await client.put(
        f"{API}/auth/password",
        content=f"password={NEW_PASSWORD}",
        headers={**await csrf_headers(client), "content-type": "application/x-www-form-urlencoded"},
    )

    assert no_csrf.status_code == 403
    assert not_json.status_code == 415
    assert (await client.get(f"{API}/auth/me")).json()["providers"] == ["github"]
