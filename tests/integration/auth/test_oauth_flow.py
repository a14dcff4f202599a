"""Signing in with GitHub and Google end to end, against a provider that really runs: the browser goes to
the provider, comes back with a code, and lands signed in on the page it came from; every way the
callback can go wrong lands it on the sign-in page with a plain message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import AppFactory
from tests.fake_oauth import FakeProvider
from tests.support import API, AppClient

CLIENT_ID, CLIENT_SECRET = "test-client", "test-secret"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(CLIENT_ID, CLIENT_SECRET) as running:
        yield running


def provider_settings(provider: FakeProvider) -> dict[str, Any]:
    return {
        "github_client_id": CLIENT_ID,
        "github_client_secret": CLIENT_SECRET,
        "github_authorize_url": provider.github_authorize_url,
        "github_token_url": provider.github_token_url,
        "github_api_url": provider.github_api_url,
        "google_client_id": CLIENT_ID,
        "google_client_secret": CLIENT_SECRET,
        "google_discovery_url": provider.google_discovery_url,
    }


async def approve(client: AppClient, name: str, next_path: str = "/files") -> str:
    """Start the sign-in in ``client`` (the browser) and let the provider approve it: the callback URL's
    path and query, as the provider sends the browser back."""
    started = await client.get(f"{API}/auth/{name}/login", params={"next": next_path}, follow_redirects=False)
    assert started.status_code == 302, started.text
    async with httpx.AsyncClient(trust_env=False) as at_provider:
        approved = await at_provider.get(started.headers["location"], follow_redirects=False)
    assert approved.status_code in {302, 303, 307}, approved.text
    back = urlsplit(approved.headers["location"])
    return f"{back.path}?{back.query}"


def sign_in_error(response: httpx.Response) -> str:
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.path == "/signin"
    return parse_qs(location.query)["error"][0]


@pytest.mark.parametrize("name", ["github", "google"])
async def test_a_first_sign_in_creates_the_account_and_lands_on_the_page_it_came_from(
    app_factory: AppFactory, provider: FakeProvider, name: str
) -> None:
    async with AppClient(app_factory(**provider_settings(provider))) as browser:
        landed = await browser.get(await approve(browser, name, "/files?page=2"), follow_redirects=False)
        me = await browser.get(f"{API}/auth/me")

    assert landed.status_code == 302
    assert landed.headers["location"] == "/files?page=2"
    assert me.status_code == 200
    assert me.json()["email"] == "octo@example.com"
    assert me.json()["providers"] == [name]  # no password: an account made by the provider
    sent = provider.token_requests[-1].fields
    assert "code_verifier" in sent  # PKCE all the way


async def test_the_second_sign_in_finds_the_same_account(app_factory: AppFactory, provider: FakeProvider) -> None:
    app = app_factory(**provider_settings(provider))
    async with AppClient(app) as first:
        second = AppClient(app)  # another browser of the same running app
        await first.get(await approve(first, "github"))
        await second.get(await approve(second, "github"))
        ids = [(await browser.get(f"{API}/auth/me")).json()["id"] for browser in (first, second)]

    assert ids[0] == ids[1]


async def test_a_replayed_callback_is_refused(app_factory: AppFactory, provider: FakeProvider) -> None:
    async with AppClient(app_factory(**provider_settings(provider))) as browser:
        callback = await approve(browser, "github")
        await browser.get(callback, follow_redirects=False)
        replayed = await browser.get(callback, follow_redirects=False)

    assert "expired or was already used" in sign_in_error(replayed)


async def test_a_callback_in_another_browser_is_refused(app_factory: AppFactory, provider: FakeProvider) -> None:
    app = app_factory(**provider_settings(provider))
    async with AppClient(app) as victim:
        attacker = AppClient(app)  # another browser of the same running app
        callback = await approve(attacker, "github")
        response = await victim.get(callback, follow_redirects=False)
        me = await victim.get(f"{API}/auth/me")

    assert "another browser" in sign_in_error(response)
    assert me.status_code == 401


async def test_a_provider_refusal_and_a_provider_down_say_so(app_factory: AppFactory, provider: FakeProvider) -> None:
    app = app_factory(**provider_settings(provider))
    async with AppClient(app) as browser:
        provider.deny = True
        denied = await browser.get(await approve(browser, "github"), follow_redirects=False)
        provider.deny = False
        callback = await approve(browser, "github")
        provider.down = True
        down = await browser.get(callback, follow_redirects=False)

    assert sign_in_error(denied) == "GitHub did not allow the sign-in."
    assert sign_in_error(down) == "GitHub is not answering. Please try again in a moment."


async def test_a_google_id_token_that_does_not_verify_signs_nobody_in(
    app_factory: AppFactory, provider: FakeProvider
) -> None:
    async with AppClient(app_factory(**provider_settings(provider))) as browser:
        results = []
        for switch in ("wrong_nonce", "wrong_audience", "expired", "wrong_key"):
            setattr(provider, switch, True)
            results.append(await browser.get(await approve(browser, "google"), follow_redirects=False))
            setattr(provider, switch, False)
        me = await browser.get(f"{API}/auth/me")

    assert [sign_in_error(result) for result in results] == [
        "Google's answer could not be verified. Please try again."
    ] * 4
    assert me.status_code == 401


async def test_an_unverified_google_email_signs_nobody_in(app_factory: AppFactory, provider: FakeProvider) -> None:
    provider.email_verified = False
    async with AppClient(app_factory(**provider_settings(provider))) as browser:
        response = await browser.get(await approve(browser, "google"), follow_redirects=False)

    assert "did not confirm your email" in sign_in_error(response)


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("", "the provider's answer was incomplete"),
        ("code=abc", "the provider's answer was incomplete"),
        ("state=never-issued&code=abc", "expired or was already used"),
    ],
)
async def test_a_callback_without_a_state_of_this_server_is_refused(
    app_factory: AppFactory, provider: FakeProvider, query: str, why: str
) -> None:
    async with AppClient(app_factory(**provider_settings(provider))) as browser:
        response = await browser.get(f"{API}/auth/github/callback?{query}", follow_redirects=False)

    assert why in sign_in_error(response)
    assert provider.token_requests == []


async def test_a_callback_without_a_code_is_refused_and_spends_its_state(
    app_factory: AppFactory, provider: FakeProvider
) -> None:
    async with AppClient(app_factory(**provider_settings(provider))) as browser:
        back = urlsplit(await approve(browser, "github"))
        state = parse_qs(back.query)["state"][0]
        without_code = await browser.get(f"{back.path}?state={state}", follow_redirects=False)
        with_code_after = await browser.get(f"{back.path}?{back.query}", follow_redirects=False)

    assert "the provider's answer was incomplete" in sign_in_error(without_code)
    assert "expired or was already used" in sign_in_error(with_code_after)
    assert provider.token_requests == []


async def test_a_code_slipped_into_another_sign_in_fails_its_pkce_check(
    app_factory: AppFactory, provider: FakeProvider
) -> None:
    """An attacker's code put into the victim's callback: state and cookie are the victim's own, but the
    code was issued for the attacker's PKCE challenge, so the provider refuses the exchange."""
    app = app_factory(**provider_settings(provider))
    async with AppClient(app) as victim:
        attacker = AppClient(app)
        attackers_code = parse_qs(urlsplit(await approve(attacker, "github")).query)["code"][0]
        victims_back = urlsplit(await approve(victim, "github"))
        victims_state = parse_qs(victims_back.query)["state"][0]
        response = await victim.get(
            f"{victims_back.path}?state={victims_state}&code={attackers_code}", follow_redirects=False
        )
        me = await victim.get(f"{API}/auth/me")

    assert sign_in_error(response) == "GitHub refused the sign-in. Please try again."
    assert [request.fields["code"] for request in provider.token_requests] == [attackers_code]
    assert me.status_code == 401
