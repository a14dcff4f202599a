"""Sign-in with GitHub and Google (OAuth 2.0 authorization code with PKCE; OpenID Connect for Google):
where each provider's endpoints are, the URL a browser is sent to, and who the provider says signed in.

Authlib writes the protocol's messages (the authorization URL, the token request); httpx carries them;
PyJWT checks Google's ID token against the keys Google publishes.

GitHub's endpoints come from the settings (github.com's by default, or a GitHub Enterprise server's);
Google's from its OpenID discovery document, fetched once per process with a short timeout.
"""

from __future__ import annotations

import httpx
import jwt
import msgspec
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request

from lfusys.auth.oauth_state import Started
from lfusys.settings import OAuthSettings

DISCOVERY_TIMEOUT = httpx.Timeout(5.0)
EXCHANGE_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
CALLBACK_PATH = "/api/v1/auth/{provider}/callback"
"""Where a provider sends the browser back (registered with the provider as the redirect URI)."""
_SCOPES = {"github": "read:user user:email", "google": "openid email profile"}
PROVIDER_NAMES = {"github": "GitHub", "google": "Google"}


class ProviderUnavailable(Exception):
    """The provider did not answer, or answered nonsense; the message names it for the user."""


class ProviderIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """Who a provider says the browser's user is."""

    provider: str
    subject: str
    """The provider's own, stable id of the user."""
    email: str
    email_verified: bool
    name: str | None = None


class IdentityRefused(Exception):
    """The provider's answer cannot sign anyone in; the message is for the user."""


class _GitHubUser(msgspec.Struct, frozen=True):
    id: int
    login: str
    name: str | None = None


class _GitHubEmail(msgspec.Struct, frozen=True):
    email: str
    primary: bool = False
    verified: bool = False


class Endpoints(msgspec.Struct, frozen=True, kw_only=True):
    authorize: str
    token: str
    profile: str
    """GitHub: the API's base URL (``/user``, ``/user/emails``); Google: the userinfo endpoint."""
    jwks: str | None = None
    issuer: str | None = None


class _Discovery(msgspec.Struct, frozen=True):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str


class OAuthEndpoints:
    """Each configured provider's endpoints (Google's discovered once and kept)."""

    def __init__(self, settings: OAuthSettings) -> None:
        self._settings = settings
        self._google: Endpoints | None = None

    def offers(self, provider: str) -> bool:
        return provider in self._settings.providers

    def client_id(self, provider: str) -> str:
        client_id = getattr(self._settings, f"{provider}_client_id")
        assert isinstance(client_id, str)
        return client_id

    async def of(self, provider: str) -> Endpoints:
        """Raises :class:`ProviderUnavailable` if Google's discovery document cannot be had."""
        if provider == "github":
            settings = self._settings
            return Endpoints(
                authorize=settings.github_authorize_url,
                token=settings.github_token_url,
                profile=settings.github_api_url.rstrip("/"),
            )
        if self._google is None:
            self._google = await self._discover_google()
        return self._google

    async def _discover_google(self) -> Endpoints:
        try:
            async with httpx.AsyncClient(timeout=DISCOVERY_TIMEOUT) as http:
                response = await http.get(self._settings.google_discovery_url)
                response.raise_for_status()
            found = msgspec.json.decode(response.content, type=_Discovery)
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            raise ProviderUnavailable("Google is not answering. Please try again in a moment.") from exc
        return Endpoints(
            authorize=found.authorization_endpoint,
            token=found.token_endpoint,
            profile=found.userinfo_endpoint,
            jwks=found.jwks_uri,
            issuer=found.issuer,
        )

    async def identity(
        self, provider: str, endpoints: Endpoints, *, code: str, verifier: str, redirect_uri: str, nonce: str | None
    ) -> ProviderIdentity:
        """Exchange the code (with the PKCE verifier) and read who signed in. Raises
        :class:`ProviderUnavailable` or :class:`IdentityRefused`."""
        name = PROVIDER_NAMES[provider]
        try:
            async with httpx.AsyncClient(timeout=EXCHANGE_TIMEOUT) as http:
                tokens = await self._exchange(http, provider, endpoints, code, verifier, redirect_uri)
                if provider == "github":
                    return await self._github_identity(http, endpoints, tokens)
                return await self._google_identity(http, endpoints, tokens, nonce)
        except (httpx.TransportError, httpx.HTTPStatusError, msgspec.DecodeError) as exc:
            raise ProviderUnavailable(f"{name} is not answering. Please try again in a moment.") from exc

    async def _exchange(
        self, http: httpx.AsyncClient, provider: str, endpoints: Endpoints, code: str, verifier: str, redirect_uri: str
    ) -> dict[str, object]:
        body = prepare_token_request(
            "authorization_code",
            redirect_uri=redirect_uri,
            code=code,
            code_verifier=verifier,
            client_id=self.client_id(provider),
            client_secret=str(getattr(self._settings, f"{provider}_client_secret")),
        )
        headers = {"accept": "application/json", "content-type": "application/x-www-form-urlencoded"}
        response = await http.post(endpoints.token, content=body, headers=headers)
        if response.status_code >= 500:
            response.raise_for_status()
        tokens = msgspec.json.decode(response.content, type=dict[str, object])
        # GitHub answers a refused code with 200 and an "error"; others with 400 or 401.
        if response.status_code != 200 or "error" in tokens:
            raise IdentityRefused(f"{PROVIDER_NAMES[provider]} refused the sign-in. Please try again.")
        return tokens

    async def _github_identity(
        self, http: httpx.AsyncClient, endpoints: Endpoints, tokens: dict[str, object]
    ) -> ProviderIdentity:
        headers = {"authorization": f"Bearer {tokens.get('access_token')}", "accept": "application/json"}
        user_response = await http.get(f"{endpoints.profile}/user", headers=headers)
        user_response.raise_for_status()
        emails_response = await http.get(f"{endpoints.profile}/user/emails", headers=headers)
        emails_response.raise_for_status()
        user = msgspec.json.decode(user_response.content, type=_GitHubUser)
        emails = msgspec.json.decode(emails_response.content, type=list[_GitHubEmail])
        primary = next((entry for entry in emails if entry.primary and entry.verified), None)
        if primary is None:
            raise IdentityRefused(
                "GitHub has no verified primary email address for you, so it cannot be used to sign in."
            )
        return ProviderIdentity(
            provider="github",
            subject=str(user.id),
            email=primary.email,
            email_verified=True,
            name=user.name or user.login,
        )

    async def _google_identity(
        self, http: httpx.AsyncClient, endpoints: Endpoints, tokens: dict[str, object], nonce: str | None
    ) -> ProviderIdentity:
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str) or endpoints.jwks is None:
            raise IdentityRefused("Google refused the sign-in. Please try again.")
        keys_response = await http.get(endpoints.jwks)
        keys_response.raise_for_status()
        try:
            keys = jwt.PyJWKSet.from_json(keys_response.text)
            key = next(key for key in keys.keys if key.key_id == jwt.get_unverified_header(id_token).get("kid"))
            claims = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=self.client_id("google"),
                issuer=endpoints.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except (jwt.PyJWTError, StopIteration) as exc:
            raise IdentityRefused("Google's answer could not be verified. Please try again.") from exc
        if nonce is None or claims.get("nonce") != nonce:
            raise IdentityRefused("Google's answer could not be verified. Please try again.")
        email = claims.get("email")
        if not isinstance(email, str):
            raise IdentityRefused("Google did not give an email address, so it cannot be used to sign in.")
        name = claims.get("name")
        return ProviderIdentity(
            provider="google",
            subject=str(claims["sub"]),
            email=email,
            email_verified=claims.get("email_verified") is True,
            name=name if isinstance(name, str) else None,
        )

    def authorize_url(self, provider: str, endpoints: Endpoints, started: Started, redirect_uri: str) -> str:
        """Where the browser goes to approve the sign-in at the provider."""
        url = prepare_grant_uri(
            endpoints.authorize,
            client_id=self.client_id(provider),
            response_type="code",
            redirect_uri=redirect_uri,
            scope=_SCOPES[provider],
            state=started.state,
            code_challenge=started.challenge,
            code_challenge_method="S256",
            nonce=started.nonce,
        )
        assert isinstance(url, str)
        return url
