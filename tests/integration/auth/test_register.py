"""POST /api/v1/auth/register: every input rule, and what each bad input does."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support import API, PASSWORD, AppClient, LiveServer, csrf_headers, login, register

Client = AppClient


async def post_register(client: Client, body: Any) -> httpx.Response:
    return await client.post(f"{API}/auth/register", json=body, headers=await csrf_headers(client))


async def test_register_returns_the_new_user_with_a_normalised_email(client: Client) -> None:
    response = await register(client, "  Ada.Lovelace@Example.COM ", name="  Ada Lovelace ")

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ada.lovelace@example.com"
    assert body["name"] == "Ada Lovelace"
    assert body["providers"] == ["password"]
    assert set(body) == {"id", "email", "name", "providers"}
    assert "set-cookie" not in response.headers or "lfusys_access" not in response.headers["set-cookie"]


async def test_the_same_email_in_another_case_is_a_conflict(client: Client) -> None:
    assert (await register(client, "ada@example.com")).status_code == 201

    response = await register(client, "ADA@Example.com", password="another password")

    assert response.status_code == 409
    assert response.json() == {"error": "an account with this email already exists"}
    # The first account's password still works: nothing was overwritten.
    assert (await login(client, "ada@example.com")).status_code == 200
    assert (await login(client, "ada@example.com", "another password")).status_code == 401


@pytest.mark.parametrize(
    "lookalike",
    [
        "\uff21\uff24\uff21@example.com",  # fullwidth A, D, A
        "\uff41\uff44\uff41@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",  # fullwidth throughout
        "ADA@EXAMPLE.COM",
    ],
)
async def test_an_address_in_compatibility_characters_is_the_same_account(client: Client, lookalike: str) -> None:
    assert (await register(client, "ada@example.com")).status_code == 201

    response = await register(client, lookalike, password="another password")

    assert response.status_code == 409
    assert (await login(client, lookalike)).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "A", "email": "a@example.com"}, "missing required field `password`"),
        ({"email": "a@example.com", "password": PASSWORD}, "missing required field `name`"),
        ({"name": "A", "password": PASSWORD}, "missing required field `email`"),
        (
            {"name": "A", "email": "a@example.com", "password": PASSWORD, "admin": True},
            "unknown field `admin`",
        ),
        ({"name": "A", "email": "a@example.com", "password": "1234567"}, "password"),
        ({"name": "A", "email": "a@example.com", "password": "x" * 129}, "password"),
        ({"name": "A", "email": "a@example.com", "password": 12345678}, "password"),
        ({"name": "", "email": "a@example.com", "password": PASSWORD}, "name"),
        ({"name": "   ", "email": "a@example.com", "password": PASSWORD}, "name"),
        ({"name": "x" * 101, "email": "a@example.com", "password": PASSWORD}, "name"),
        ({"name": "bad\x00name", "email": "a@example.com", "password": PASSWORD}, "control characters"),
        ({"name": "A", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"name": "A", "email": "a@", "password": PASSWORD}, "email"),
        ({"name": "A", "email": "a b@example.com", "password": PASSWORD}, "email"),
        ({"name": "A", "email": "a" * 250 + "@example.com", "password": PASSWORD}, "email"),
        ([], "Expected `object`"),
        ("just a string", "Expected `object`"),
    ],
)
async def test_invalid_registrations_are_rejected_and_create_nothing(client: Client, body: Any, message: str) -> None:
    response = await post_register(client, body)

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert (await login(client, "a@example.com")).status_code == 401


@pytest.mark.parametrize("password", ["x" * 8, "x" * 128, "pässwörd-ünïcode", "with spaces in it"])
async def test_password_limits_are_inclusive(client: Client, password: str) -> None:
    assert (await register(client, "ada@example.com", password=password)).status_code == 201
    assert (await login(client, "ada@example.com", password)).status_code == 200


@pytest.mark.parametrize("name", ["A", "x" * 100, "Zoë Ōkubo-Ñandú"])
async def test_name_limits_are_inclusive(client: Client, name: str) -> None:
    response = await register(client, "ada@example.com", name=name)

    assert response.status_code == 201
    assert response.json()["name"] == name


async def test_malformed_json_is_a_400(client: Client) -> None:
    response = await client.post(
        f"{API}/auth/register",
        content=b'{"name": "A", "email": ',
        headers={**await csrf_headers(client), "content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_body_that_is_not_json_is_a_415(client: Client, content_type: str | None) -> None:
    headers = await csrf_headers(client)
    if content_type:
        headers["content-type"] = content_type
    body = b'{"name": "A", "email": "a@example.com", "password": "correct horse battery"}'

    response = await client.post(f"{API}/auth/register", content=body, headers=headers)

    assert response.status_code == 415
    assert response.json() == {"error": "expected Content-Type: application/json"}
    assert (await login(client, "a@example.com")).status_code == 401


async def test_an_oversized_body_is_a_413_and_creates_nothing(client: Client) -> None:
    body = {"name": "A", "email": "a@example.com", "password": PASSWORD, "padding": "x" * 100_000}

    response = await post_register(client, body)

    assert response.status_code == 413
    assert "error" in response.json()
    assert (await login(client, "a@example.com")).status_code == 401


async def test_concurrent_registrations_of_one_email_give_exactly_one_account(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as setup:
        headers = await csrf_headers(setup)
        cookies = dict(setup.cookies)

    async def attempt(index: int) -> int:
        async with httpx.AsyncClient(base_url=live_server.url, cookies=cookies) as client:
            email = "race@example.com" if index % 2 else "RACE@example.com"
            body = {"name": f"Racer {index}", "email": email, "password": f"password-{index}"}
            response = await client.post(f"{API}/auth/register", json=body, headers=headers)
            return response.status_code

    statuses = await asyncio.gather(*(attempt(i) for i in range(12)))

    assert sorted(statuses) == [201] + [409] * 11
