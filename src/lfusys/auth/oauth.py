"""Sign-in with GitHub and Google (OAuth 2.0 authorization code with PKCE; OpenID Connect for Google):
where each provider's endpoints are, and the URL a browser is sent to.

GitHub's endpoints come from the settings (github.com's by default, or a GitHub Enterprise server's);
Google's from its OpenID discovery document, fetched once per process with a short timeout.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import msgspec

from lfusys.auth.oauth_state import Started
from lfusys.settings import OAuthSettings

DISCOVERY_TIMEOUT = httpx.Timeout(5.0)
CALLBACK_PATH = "/api/v1/auth/{provider}/callback"
"""Where a provider sends the browser back (registered with the provider as the redirect URI)."""
_SCOPES = {"github": "read:user user:email", "google": "openid email profile"}
PROVIDER_NAMES = {"github": "GitHub", "google": "Google"}


class ProviderUnavailable(Exception):
    """The provider did not answer, or answered nonsense; the message names it for the user."""


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

    def authorize_url(self, provider: str, endpoints: Endpoints, started: Started, redirect_uri: str) -> str:
        """Where the browser goes to approve the sign-in at the provider."""
        query = {
            "response_type": "code",
            "client_id": self.client_id(provider),
            "redirect_uri": redirect_uri,
            "scope": _SCOPES[provider],
            "state": started.state,
            "code_challenge": started.challenge,
            "code_challenge_method": "S256",
        }
        if started.nonce is not None:
            query["nonce"] = started.nonce
        separator = "&" if "?" in endpoints.authorize else "?"
        return f"{endpoints.authorize}{separator}{urlencode(query)}"
