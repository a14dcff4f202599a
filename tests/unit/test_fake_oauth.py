"""The fake OAuth provider behaves as the sign-in tests rely on: real PKCE checks, single-use codes,
GitHub's user and emails, and Google ID tokens that verify against its JWKS unless a switch breaks them."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from tests.fake_oauth import FakeProvider, ProviderAccount, ProviderEmail, fake_provider

CLIENT_ID = "lfusys-test"
CLIENT_SECRET = "s3cret"
REDIRECT_URI = "http://127.0.0.1:9/auth/callback"


@pytest.fixture(scope="module")
def shared_provider() -> Iterator[FakeProvider]:
    # One server for the module keeps the suite fast; each test gets the switches reset.
    yield from fake_provider(CLIENT_ID, CLIENT_SECRET)


@pytest.fixture
def provider(shared_provider: FakeProvider) -> FakeProvider:
    p = shared_provider
    p.down = p.deny = p.wrong_nonce = p.wrong_audience = p.expired = p.wrong_key = False
    p.email_verified = True
    p.account = ProviderAccount()
    p.token_requests.clear()
    p.authorize_requests.clear()
    return p


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5, follow_redirects=False) as client:
        yield client


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(http: httpx.Client, url: str, challenge: str, **extra: str) -> dict[str, str]:
    """Follow the consent screen by hand; returns the query the app's callback would get."""
    query = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "state": "st-1",
        "scope": "read:user user:email",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    response = http.get(f"{url}?{urlencode(query)}")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def exchange(http: httpx.Client, url: str, code: str, verifier: str, **overrides: str) -> httpx.Response:
    form = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "grant_type": "authorization_code",
        **overrides,
    }
    return http.post(url, data=form, headers={"Accept": "application/json"})


def github_token(http: httpx.Client, provider: FakeProvider) -> str:
    verifier, challenge = pkce_pair()
    callback = authorize(http, provider.github_authorize_url, challenge)
    body = exchange(http, provider.github_token_url, callback["code"], verifier).json()
    return str(body["access_token"])


def test_github_round_trip_with_the_right_verifier_gives_a_token(http: httpx.Client, provider: FakeProvider) -> None:
    verifier, challenge = pkce_pair()
    callback = authorize(http, provider.github_authorize_url, challenge)
    assert callback["state"] == "st-1"

    response = exchange(http, provider.github_token_url, callback["code"], verifier)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["scope"] == "read:user user:email"
    assert body["access_token"]
    assert provider.token_requests[-1].fields["code_verifier"] == verifier
    assert provider.token_requests[-1].client_auth == "post"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_verifier": "not-the-verifier"}, "bad_verification_code"),
        ({"client_secret": "wrong"}, "incorrect_client_credentials"),
        ({"redirect_uri": "http://127.0.0.1:9/elsewhere"}, "redirect_uri_mismatch"),
    ],
)
def test_github_refuses_a_bad_exchange_with_200_and_an_error(
    http: httpx.Client, provider: FakeProvider, overrides: dict[str, str], error: str
) -> None:
    verifier, challenge = pkce_pair()
    callback = authorize(http, provider.github_authorize_url, challenge)

    response = exchange(http, provider.github_token_url, callback["code"], verifier, **overrides)

    assert response.status_code == 200
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


def test_a_code_never_issued_is_refused(http: httpx.Client, provider: FakeProvider) -> None:
    response = exchange(http, provider.github_token_url, "never-issued", pkce_pair()[0])

    assert response.json()["error"] == "bad_verification_code"


def test_a_code_is_spent_once(http: httpx.Client, provider: FakeProvider) -> None:
    verifier, challenge = pkce_pair()
    code = authorize(http, provider.github_authorize_url, challenge)["code"]
    assert "access_token" in exchange(http, provider.github_token_url, code, verifier).json()

    again = exchange(http, provider.github_token_url, code, verifier)

    assert again.json()["error"] == "bad_verification_code"


def test_deny_redirects_back_with_access_denied(http: httpx.Client, provider: FakeProvider) -> None:
    provider.deny = True

    callback = authorize(http, provider.github_authorize_url, pkce_pair()[1])

    assert callback == {"error": "access_denied", "state": "st-1"}


def test_authorize_without_pkce_is_refused(http: httpx.Client, provider: FakeProvider) -> None:
    callback = authorize(http, provider.github_authorize_url, "", code_challenge_method="plain")

    assert callback["error"] == "invalid_request"


def test_github_user_and_emails_follow_the_account(http: httpx.Client, provider: FakeProvider) -> None:
    provider.account = ProviderAccount(
        id=777,
        login="hubot",
        name="Hu Bot",
        emails=[
            ProviderEmail("old@example.com", primary=False, verified=False),
            ProviderEmail("hubot@example.com", primary=True, verified=True),
        ],
    )
    headers = {"Authorization": f"Bearer {github_token(http, provider)}"}

    user = http.get(f"{provider.github_api_url}/user", headers=headers).json()
    emails = http.get(f"{provider.github_api_url}/user/emails", headers=headers).json()

    assert user == {"id": 777, "login": "hubot", "name": "Hu Bot", "email": None}
    assert [(e["email"], e["primary"], e["verified"]) for e in emails] == [
        ("old@example.com", False, False),
        ("hubot@example.com", True, True),
    ]


def test_github_api_wants_a_token_it_issued(http: httpx.Client, provider: FakeProvider) -> None:
    response = http.get(f"{provider.github_api_url}/user", headers={"Authorization": "Bearer made-up"})

    assert response.status_code == 401


def test_down_answers_503_everywhere(http: httpx.Client, provider: FakeProvider) -> None:
    provider.down = True

    assert http.get(provider.google_discovery_url).status_code == 503
    assert http.post(provider.github_token_url, data={"code": "x"}).status_code == 503
    assert http.get(f"{provider.github_authorize_url}?client_id={CLIENT_ID}").status_code == 503


def google_sign_in(http: httpx.Client, provider: FakeProvider, nonce: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Discovery, consent and exchange (client credentials in HTTP Basic); returns the metadata and token body."""
    metadata: dict[str, Any] = http.get(provider.google_discovery_url).json()
    verifier, challenge = pkce_pair()
    callback = authorize(http, metadata["authorization_endpoint"], challenge, scope="openid email", nonce=nonce)
    form = {
        "code": callback["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "grant_type": "authorization_code",
    }
    response = http.post(metadata["token_endpoint"], data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert response.status_code == 200, response.text
    return metadata, response.json()


def verify_id_token(http: httpx.Client, metadata: dict[str, Any], id_token: str, nonce: str) -> dict[str, Any]:
    jwks = jwt.PyJWKSet.from_dict(http.get(metadata["jwks_uri"]).json())
    key = jwks[jwt.get_unverified_header(id_token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        id_token,
        key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=metadata["issuer"],
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    if claims.get("nonce") != nonce:
        raise jwt.InvalidTokenError("nonce mismatch")
    return claims


def test_google_id_token_verifies_against_the_jwks(http: httpx.Client, provider: FakeProvider) -> None:
    metadata, body = google_sign_in(http, provider, nonce="n-123")

    claims = verify_id_token(http, metadata, body["id_token"], "n-123")

    assert metadata["issuer"] == provider.base_url
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert claims["sub"] == "12345"
    assert claims["email"] == "octo@example.com"
    assert claims["email_verified"] is True
    assert provider.token_requests[-1].client_auth == "basic"
    userinfo = http.get(metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.json()["sub"] == "12345"


def test_google_reports_an_unverified_address(http: httpx.Client, provider: FakeProvider) -> None:
    provider.email_verified = False
    metadata, body = google_sign_in(http, provider, nonce="n-1")

    assert verify_id_token(http, metadata, body["id_token"], "n-1")["email_verified"] is False


@pytest.mark.parametrize("switch", ["wrong_nonce", "wrong_audience", "expired", "wrong_key"])
def test_each_broken_id_token_fails_verification(http: httpx.Client, provider: FakeProvider, switch: str) -> None:
    setattr(provider, switch, True)
    metadata, body = google_sign_in(http, provider, nonce="n-456")

    with pytest.raises(jwt.InvalidTokenError):
        verify_id_token(http, metadata, body["id_token"], "n-456")


def test_google_refuses_a_wrong_verifier_with_invalid_grant(http: httpx.Client, provider: FakeProvider) -> None:
    _, challenge = pkce_pair()
    callback = authorize(http, f"{provider.base_url}/o/oauth2/v2/auth", challenge, scope="openid")

    response = exchange(http, f"{provider.base_url}/token", callback["code"], "wrong")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_stops_and_starts_within_a_second() -> None:
    with FakeProvider(CLIENT_ID, CLIENT_SECRET) as provider:
        url = provider.google_discovery_url
        assert httpx.get(url).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
