"""Access and refresh tokens over HTTP: /me, refresh rotation, reuse detection, logout, tampering."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from lfusys.auth.tokens import TokenCodec, TokenType
from lfusys.settings import Settings
from tests.conftest import AppFactory
from tests.support import API, BASE_URL, AppClient, FakeClock, csrf_headers, login, make_settings, signed_in

Client = AppClient
ACCESS = "lfusys_access"
REFRESH = "lfusys_refresh"
SECRETS = {"jwt_access": "a" * 64, "jwt_refresh": "r" * 64}
"""The server's token secrets, given to it as settings so the test knows them on every backend (the
local backend's own generated ones: tests/integration/storage/local/test_data_dir.py)."""


@pytest.fixture
def settings(data_dir: Path, backend_name: str) -> Settings:
    return make_settings(
        data_dir,
        backend=backend_name,
        jwt_access_secret=SECRETS["jwt_access"],
        jwt_refresh_secret=SECRETS["jwt_refresh"],
    )


def stored_keys(settings: Settings) -> dict[str, str]:
    """The secrets ``settings`` give the server."""
    assert (settings.auth.jwt_access_secret, settings.auth.jwt_refresh_secret) == (
        SECRETS["jwt_access"],
        SECRETS["jwt_refresh"],
    )
    return SECRETS


def claims_of(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


async def me(client: Client) -> int:
    return (await client.get(f"{API}/auth/me")).status_code


async def refresh(client: Client) -> Any:
    return await client.post(f"{API}/auth/refresh", headers=await csrf_headers(client))


def with_cookie(client: Client, name: str, value: str) -> None:
    client.cookies.delete(name)
    client.cookies.set(name, value)


async def test_me_returns_the_signed_in_user(client: Client) -> None:
    user = await signed_in(client)

    response = await client.get(f"{API}/auth/me")

    assert response.status_code == 200
    assert response.json() == user


async def test_me_without_a_cookie_is_401(client: Client) -> None:
    response = await client.get(f"{API}/auth/me")

    assert response.status_code == 401
    assert response.json() == {"error": "not signed in"}


async def test_tokens_carry_the_required_claims(client: Client) -> None:
    user = await signed_in(client)

    for name, kind in ((ACCESS, "access"), (REFRESH, "refresh")):
        token = client.cookies[name]
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        claims = claims_of(token)
        assert claims["sub"] == user["id"]
        assert claims["type"] == kind
        assert {"exp", "iat", "jti", "fid"} <= set(claims)
    access, refresh_claims = claims_of(client.cookies[ACCESS]), claims_of(client.cookies[REFRESH])
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh_claims["exp"] - refresh_claims["iat"] == 30 * 86400
    assert access["jti"] != refresh_claims["jti"]


async def test_refresh_rotates_both_tokens(client: Client) -> None:
    await signed_in(client)
    old_access, old_refresh = client.cookies[ACCESS], client.cookies[REFRESH]

    response = await refresh(client)

    assert response.status_code == 200
    assert client.cookies[ACCESS] != old_access
    assert client.cookies[REFRESH] != old_refresh
    assert claims_of(client.cookies[REFRESH])["fid"] == claims_of(old_refresh)["fid"]
    assert await me(client) == 200


async def test_replaying_a_rotated_refresh_token_revokes_the_whole_family(client: Client, clock: FakeClock) -> None:
    await signed_in(client)
    first_refresh = client.cookies[REFRESH]
    assert (await refresh(client)).status_code == 200
    current_access, current_refresh = client.cookies[ACCESS], client.cookies[REFRESH]

    # An attacker replays the stolen, already rotated token, after the grace window for two tabs.
    clock.advance(timedelta(seconds=31))
    with_cookie(client, REFRESH, first_refresh)
    replay = await refresh(client)

    assert replay.status_code == 401
    assert replay.json() == {"error": "session ended; sign in again"}
    # The legitimate holder's newer tokens are dead too: the user must sign in again.
    with_cookie(client, ACCESS, current_access)
    with_cookie(client, REFRESH, current_refresh)
    assert await me(client) == 401
    assert (await refresh(client)).status_code == 401


async def test_two_tabs_refreshing_with_the_same_token_at_once_both_stay_signed_in(client: Client) -> None:
    await signed_in(client)
    shared_refresh = client.cookies[REFRESH]
    other_tab = AppClient(client.app, base_url=BASE_URL)
    other_tab.cookies = httpx.Cookies(client.cookies)

    first, second = await asyncio.gather(refresh(client), refresh(other_tab))

    assert (first.status_code, second.status_code) == (200, 200)
    assert client.cookies[REFRESH] != shared_refresh
    assert other_tab.cookies[REFRESH] not in {shared_refresh, client.cookies[REFRESH]}
    assert await me(client) == 200
    assert await me(other_tab) == 200
    # Each tab's new refresh token keeps working on its own.
    assert (await refresh(client)).status_code == 200
    assert (await refresh(other_tab)).status_code == 200


async def test_a_refresh_retried_after_a_lost_response_succeeds_within_the_grace_window(
    client: Client, clock: FakeClock
) -> None:
    await signed_in(client)
    sent = client.cookies[REFRESH]
    assert (await refresh(client)).status_code == 200  # the browser never saw this answer

    clock.advance(timedelta(seconds=29))
    with_cookie(client, REFRESH, sent)
    retried = await refresh(client)

    assert retried.status_code == 200
    assert await me(client) == 200


async def test_the_grace_window_is_configurable_and_zero_turns_it_off(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(refresh_reuse_grace=timedelta(0)), base_url=BASE_URL) as client:
        await signed_in(client)
        sent = client.cookies[REFRESH]
        assert (await refresh(client)).status_code == 200
        after = client.cookies[ACCESS]

        with_cookie(client, REFRESH, sent)
        assert (await refresh(client)).status_code == 401
        with_cookie(client, ACCESS, after)
        assert await me(client) == 401


async def test_other_sign_ins_survive_a_revoked_family(client: Client) -> None:
    await signed_in(client)
    laptop = {ACCESS: client.cookies[ACCESS], REFRESH: client.cookies[REFRESH]}
    assert (await login(client, "ada@example.com")).status_code == 200  # the same user on a phone
    phone = {ACCESS: client.cookies[ACCESS], REFRESH: client.cookies[REFRESH]}

    for name, value in laptop.items():
        with_cookie(client, name, value)
    assert (await client.post(f"{API}/auth/logout", headers=await csrf_headers(client))).status_code == 204

    assert await me(client) == 401
    for name, value in phone.items():
        with_cookie(client, name, value)
    assert await me(client) == 200
    assert (await refresh(client)).status_code == 200


async def test_logout_clears_cookies_and_revokes_the_sign_in(client: Client) -> None:
    await signed_in(client)
    access, refresh_token = client.cookies[ACCESS], client.cookies[REFRESH]

    response = await client.post(f"{API}/auth/logout", headers=await csrf_headers(client))

    assert response.status_code == 204
    cleared = response.headers.get_list("set-cookie")
    assert any(h.startswith(f"{ACCESS}=") and "Max-Age=0" in h for h in cleared)
    assert any(h.startswith(f"{REFRESH}=") and "Max-Age=0" in h for h in cleared)
    # Even a client that kept copies of the tokens cannot use them.
    with_cookie(client, ACCESS, access)
    with_cookie(client, REFRESH, refresh_token)
    assert await me(client) == 401
    assert (await refresh(client)).status_code == 401


async def test_logout_without_a_session_is_harmless(client: Client) -> None:
    response = await client.post(f"{API}/auth/logout", headers=await csrf_headers(client))

    assert response.status_code == 204


async def test_refresh_without_a_cookie_is_401_and_clears_cookies(client: Client) -> None:
    response = await refresh(client)

    assert response.status_code == 401
    assert response.json() == {"error": "not signed in"}
    assert any(h.startswith(f"{ACCESS}=") and "Max-Age=0" in h for h in response.headers.get_list("set-cookie"))


def _forge(claims: dict[str, Any], secret: str, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _unsigned(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


@pytest.mark.parametrize(
    ("tamper", "error"),
    [
        pytest.param(lambda c, k: _unsigned(c), "invalid access token", id="alg-none"),
        pytest.param(lambda c, k: _forge(c, "x" * 48), "invalid access token", id="other-secret"),
        pytest.param(lambda c, k: _forge(c, k["jwt_access"], "HS512"), "invalid access token", id="hs512"),
        pytest.param(lambda c, k: _forge(c, k["jwt_refresh"]), "invalid access token", id="refresh-secret"),
        pytest.param(
            lambda c, k: _forge({**c, "exp": int(time.time()) - 5}, k["jwt_access"]),
            "access token expired",
            id="expired",
        ),
        pytest.param(lambda c, k: _forge({**c, "type": "refresh"}, k["jwt_access"]), "invalid access token", id="type"),
        pytest.param(
            lambda c, k: _forge({key: v for key, v in c.items() if key != "jti"}, k["jwt_access"]),
            "invalid access token",
            id="missing-jti",
        ),
        pytest.param(
            lambda c, k: _forge({**c, "sub": "someone-else"}, k["jwt_access"]),
            "session ended; sign in again",
            id="unknown-user",
        ),
        pytest.param(lambda c, k: "not-a-jwt", "invalid access token", id="garbage"),
        pytest.param(lambda c, k: _forge(c, k["jwt_access"])[:-2] + "xx", "invalid access token", id="bad-signature"),
    ],
)
async def test_tampered_access_tokens_are_rejected(client: Client, settings: Settings, tamper: Any, error: str) -> None:
    await signed_in(client)
    genuine = claims_of(client.cookies[ACCESS])

    with_cookie(client, ACCESS, tamper(genuine, stored_keys(settings)))
    response = await client.get(f"{API}/auth/me")

    assert response.status_code == 401
    assert response.json() == {"error": error}


async def test_a_genuine_token_re_signed_correctly_is_accepted(client: Client, settings: Settings) -> None:
    """Guards the test above: the forging helper itself makes valid tokens when nothing is tampered."""
    await signed_in(client)
    genuine = claims_of(client.cookies[ACCESS])

    with_cookie(client, ACCESS, _forge(genuine, stored_keys(settings)["jwt_access"]))

    assert await me(client) == 200


async def test_an_access_token_is_not_a_refresh_token(client: Client) -> None:
    await signed_in(client)

    with_cookie(client, REFRESH, client.cookies[ACCESS])
    response = await refresh(client)

    assert response.status_code == 401
    assert response.json() == {"error": "invalid refresh token"}


async def test_a_refresh_token_is_not_an_access_token(client: Client) -> None:
    await signed_in(client)

    with_cookie(client, ACCESS, client.cookies[REFRESH])

    assert await me(client) == 401


async def test_an_expired_refresh_token_is_rejected(client: Client, settings: Settings) -> None:
    user = await signed_in(client)
    keys = stored_keys(settings)
    codec = TokenCodec(
        access_secret=keys["jwt_access"],
        refresh_secret=keys["jwt_refresh"],
        access_ttl=timedelta(minutes=15),
        refresh_ttl=timedelta(days=30),
    )
    fid = claims_of(client.cookies[REFRESH])["fid"]
    expired, _ = codec.issue(
        TokenType.REFRESH, user_id=user["id"], family_id=fid, now=datetime.now(UTC) - timedelta(days=31)
    )

    with_cookie(client, REFRESH, expired)
    response = await refresh(client)

    assert response.status_code == 401
    assert response.json() == {"error": "refresh token expired"}


async def test_a_forged_refresh_token_with_the_right_secret_but_never_issued_is_rejected(
    client: Client, settings: Settings
) -> None:
    await signed_in(client)
    access, genuine_refresh = client.cookies[ACCESS], client.cookies[REFRESH]
    claims = {**claims_of(genuine_refresh), "jti": "never-issued"}

    with_cookie(client, REFRESH, _forge(claims, stored_keys(settings)["jwt_refresh"]))
    response = await refresh(client)

    assert response.status_code == 401
    # An unknown token does not end the real sign-in.
    with_cookie(client, ACCESS, access)
    with_cookie(client, REFRESH, genuine_refresh)
    assert await me(client) == 200
    assert (await refresh(client)).status_code == 200
