"""Signing in with GitHub and Google: the providers the server offers (from its settings), and the start
of a sign-in — the redirect to the provider with state and PKCE, bound to the browser by a cookie."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import AppFactory
from tests.support import API, AppClient, free_port, services_of

GITHUB = {"github_client_id": "gh-id", "github_client_secret": "gh-secret"}
GOOGLE = {"google_client_id": "g-id", "google_client_secret": "g-secret"}


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("configured", "offered"),
    [({}, []), (GITHUB, ["github"]), (GOOGLE, ["google"]), ({**GOOGLE, **GITHUB}, ["github", "google"])],
)
async def test_the_configured_providers_are_listed_to_anyone(
    app_factory: AppFactory, configured: dict[str, str], offered: list[str]
) -> None:
    async with AppClient(app_factory(**configured)) as client:
        response = await client.get(f"{API}/auth/providers")

    assert response.status_code == 200
    assert response.json() == {"providers": offered}
    assert "gh-secret" not in response.text
    assert "g-secret" not in response.text


async def test_signing_in_with_github_goes_to_its_approval_page_with_state_and_pkce(app_factory: AppFactory) -> None:
    app = app_factory(
        public_url="https://files.example.org", github_authorize_url="https://gh.example/authorize", **GITHUB
    )
    async with AppClient(app, base_url="https://files.example.org") as client:
        response = await client.get(
            f"{API}/auth/github/login", params={"next": "/files?page=2"}, follow_redirects=False
        )
        location = urlsplit(response.headers["location"])
        query = {key: values[0] for key, values in parse_qs(location.query).items()}
        cookie = response.cookies["__Host-lfusys_oauth_state"]
        pending = await services_of(client).sign_ins.take("github", query["state"], cookie)

    assert response.status_code == 302
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://gh.example/authorize"
    assert query["client_id"] == "gh-id"
    assert query["redirect_uri"] == "https://files.example.org/api/v1/auth/github/callback"
    assert (query["response_type"], query["code_challenge_method"]) == ("code", "S256")
    assert "nonce" not in query
    assert "gh-secret" not in response.headers["location"]
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie
    assert "secure" in set_cookie
    assert "max-age=600" in set_cookie
    assert pending.next == "/files?page=2"
    assert query["code_challenge"] == pkce_challenge(pending.verifier)


@pytest.mark.parametrize("next_path", ["//evil.example", "https://evil.example", "/\\evil.example"])
async def test_a_next_page_off_this_site_is_replaced_by_the_start_page(app_factory: AppFactory, next_path: str) -> None:
    async with AppClient(app_factory(**GITHUB)) as client:
        response = await client.get(f"{API}/auth/github/login", params={"next": next_path}, follow_redirects=False)
        query = parse_qs(urlsplit(response.headers["location"]).query)
        pending = await services_of(client).sign_ins.take(
            "github", query["state"][0], response.cookies["lfusys_oauth_state"]
        )

    assert pending.next == "/"


@pytest.mark.parametrize("provider", ["google", "gitlab", "..", "github%2F..%2F"])
async def test_a_provider_that_is_not_offered_is_not_found(app_factory: AppFactory, provider: str) -> None:
    async with AppClient(app_factory(**GITHUB)) as client:
        response = await client.get(f"{API}/auth/{provider}/login", follow_redirects=False)

    assert response.status_code == 404


async def test_google_not_answering_sends_the_browser_to_the_sign_in_page_saying_so(app_factory: AppFactory) -> None:
    closed = f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration"
    async with AppClient(app_factory(google_discovery_url=closed, **GOOGLE)) as client:
        response = await client.get(f"{API}/auth/google/login", follow_redirects=False)

    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.path == "/signin"
    assert parse_qs(location.query)["error"] == ["Google is not answering. Please try again in a moment."]
    assert "lfusys_oauth_state" not in response.headers.get("set-cookie", "")  # no sign-in was started
