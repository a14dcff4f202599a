"""A GitHub- and Google-like OAuth2 / OpenID Connect provider that the sign-in tests talk to over HTTP.

:class:`FakeProvider` serves, on a free loopback port from a thread of the test process, the endpoints
the app reaches when someone signs in with GitHub (authorize, access token, user, user emails) or with
Google (discovery, authorize, token with an RS256 ID token, JWKS, userinfo). Every consent is granted at
once, so a test follows the redirect itself. The codes are checked as the real providers check them
(client secret, single use, same redirect URI, PKCE S256), and switches on the instance make the
provider refuse, fall over, or hand out ID tokens that a careful client must reject.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from litestar import Litestar, Request, Response, get, post
from litestar.response import Redirect

_START_PATIENCE = 5.0
_STOP_PATIENCE = 5.0
_ID_TOKEN_LIFETIME = 3600

Flavour = Literal["github", "google"]


class FakeProviderError(RuntimeError):
    """The fake provider did not come up, or did not stop."""


@dataclass
class ProviderEmail:
    """One address of the account, as GitHub's ``/user/emails`` lists it."""

    email: str
    primary: bool = False
    verified: bool = True


@dataclass
class ProviderAccount:
    """The person who signs in: the same account answers as a GitHub user and as a Google subject."""

    id: int = 12345
    login: str = "octo"
    name: str | None = "Octo Cat"
    public_email: str | None = None
    """What GitHub's ``/user`` shows as ``email`` (``None`` when the address is private, the usual case)."""
    emails: list[ProviderEmail] = field(
        default_factory=lambda: [ProviderEmail("octo@example.com", primary=True, verified=True)]
    )

    @property
    def primary_email(self) -> str | None:
        """The primary address (the one Google puts in the ID token), if any."""
        return next((e.email for e in self.emails if e.primary), None)


@dataclass(frozen=True)
class TokenRequest:
    """One call to a token endpoint, as it arrived (whether or not a token was given for it)."""

    flavour: Flavour
    fields: dict[str, str]
    """The form fields, ``code_verifier`` among them when the client used PKCE."""
    client_auth: Literal["basic", "post", "none"]
    """Where the client put its credentials: HTTP Basic, the form, or nowhere."""


@dataclass
class _Grant:
    flavour: Flavour
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    nonce: str | None
    used: bool = False


class FakeProvider:
    """A running fake of GitHub's OAuth apps and Google's OpenID Connect, for one client.

    Use it as a context manager (``with FakeProvider("id", "secret") as provider:``) or call
    :meth:`start` and :meth:`stop`. Its switches may be flipped at any time while it runs.
    """

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.account = ProviderAccount()

        self.down = False
        """Every endpoint answers 503."""
        self.deny = False
        """The user refuses consent: authorize redirects back with ``error=access_denied``."""
        self.email_verified = True
        """What Google says of the account's address (in the ID token and at userinfo)."""
        self.wrong_nonce = False
        self.wrong_audience = False
        self.expired = False
        self.wrong_key = False
        """ID tokens are signed with a key the JWKS does not publish (under the published ``kid``)."""

        self.token_requests: list[TokenRequest] = []
        """Every call to either token endpoint, oldest first."""
        self.authorize_requests: list[dict[str, str]] = []
        """The query of every call to either authorize endpoint, oldest first."""

        self.kid = secrets.token_hex(8)
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._stranger_key: rsa.RSAPrivateKey | None = None
        self._grants: dict[str, _Grant] = {}
        self._access_tokens: dict[str, Flavour] = {}
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- the URLs the app is configured with -------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; also the Google issuer."""
        if self._sock is None:
            raise FakeProviderError("the fake provider is not running")
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    @property
    def github_authorize_url(self) -> str:
        return f"{self.base_url}/login/oauth/authorize"

    @property
    def github_token_url(self) -> str:
        return f"{self.base_url}/login/oauth/access_token"

    @property
    def github_api_url(self) -> str:
        """The API root: the user is at ``/user`` and the addresses at ``/user/emails`` under it."""
        return f"{self.base_url}/api"

    @property
    def google_discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    @property
    def issuer(self) -> str:
        return self.base_url

    # --- running ----------------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Serve on a free loopback port; returns once connections are accepted."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            self._app(),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="fake-oauth", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_PATIENCE
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise FakeProviderError("the fake OAuth provider did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving (harmless when stopped already)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_PATIENCE)
            if self._thread.is_alive():
                raise FakeProviderError("the fake OAuth provider did not stop")
        if self._sock is not None:
            self._sock.close()
        self._server, self._thread, self._sock = None, None, None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- what tests read --------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """The published key set (one RSA key, ``kid`` set)."""
        jwk = RSAAlgorithm.to_jwk(self._signing_key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def id_token(self, *, nonce: str | None, audience: str | None = None) -> str:
        """An ID token for the account as the switches make it (also used by the token endpoint)."""
        now = int(time.time())
        issued = now - 2 * _ID_TOKEN_LIFETIME if self.expired else now
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": "someone-else.apps.example" if self.wrong_audience else (audience or self.client_id),
            "sub": str(self.account.id),
            "email": self.account.primary_email,
            "email_verified": self.email_verified,
            "name": self.account.name,
            "iat": issued,
            "exp": issued + _ID_TOKEN_LIFETIME,
        }
        if nonce is not None:
            claims["nonce"] = "not-" + nonce if self.wrong_nonce else nonce
        key = self._signing_key
        if self.wrong_key:
            if self._stranger_key is None:
                self._stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key = self._stranger_key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    # --- the endpoints ----------------------------------------------------------------------------

    def _app(self) -> Litestar:
        provider = self

        async def when_down(_: Request[Any, Any, Any]) -> Response[Any] | None:
            if provider.down:
                return Response({"message": "Service Unavailable"}, status_code=503)
            return None

        @get("/login/oauth/authorize", sync_to_thread=False)
        def github_authorize(request: Request[Any, Any, Any]) -> Response[Any]:
            return provider._authorize("github", request)

        @get("/o/oauth2/v2/auth", sync_to_thread=False)
        def google_authorize(request: Request[Any, Any, Any]) -> Response[Any]:
            return provider._authorize("google", request)

        @post("/login/oauth/access_token", status_code=200)
        async def github_token(request: Request[Any, Any, Any]) -> Response[Any]:
            return provider._token("github", request, dict(await request.form()))

        @post("/token", status_code=200)
        async def google_token(request: Request[Any, Any, Any]) -> Response[Any]:
            return provider._token("google", request, dict(await request.form()))

        @get("/api/user", sync_to_thread=False)
        def github_user(request: Request[Any, Any, Any]) -> Response[Any]:
            if not provider._bearer_of(request, "github"):
                return _github_bad_credentials()
            account = provider.account
            body = {"id": account.id, "login": account.login, "name": account.name, "email": account.public_email}
            return Response(body)

        @get("/api/user/emails", sync_to_thread=False)
        def github_emails(request: Request[Any, Any, Any]) -> Response[Any]:
            if not provider._bearer_of(request, "github"):
                return _github_bad_credentials()
            emails = [
                {"email": e.email, "primary": e.primary, "verified": e.verified, "visibility": None}
                for e in provider.account.emails
            ]
            return Response(emails)

        @get("/.well-known/openid-configuration", sync_to_thread=False)
        def discovery() -> dict[str, Any]:
            base = provider.base_url
            return {
                "issuer": provider.issuer,
                "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
            }

        @get("/jwks", sync_to_thread=False)
        def jwks() -> dict[str, Any]:
            return provider.jwks()

        @get("/userinfo", sync_to_thread=False)
        def userinfo(request: Request[Any, Any, Any]) -> Response[Any]:
            if not provider._bearer_of(request, "google"):
                return Response({"error": "invalid_token"}, status_code=401)
            account = provider.account
            body = {
                "sub": str(account.id),
                "email": account.primary_email,
                "email_verified": provider.email_verified,
                "name": account.name,
            }
            return Response(body)

        return Litestar(
            route_handlers=[
                github_authorize,
                google_authorize,
                github_token,
                google_token,
                github_user,
                github_emails,
                discovery,
                jwks,
                userinfo,
            ],
            before_request=when_down,
            openapi_config=None,
            logging_config=None,
        )

    def _authorize(self, flavour: Flavour, request: Request[Any, Any, Any]) -> Response[Any]:
        query = {key: str(value) for key, value in request.query_params.items()}
        self.authorize_requests.append(query)
        redirect_uri = query.get("redirect_uri", "")
        # Like the real ones, an unknown client or a missing redirect gets a page, never a redirect.
        if query.get("client_id") != self.client_id or not redirect_uri:
            return Response({"error": "invalid_client"}, status_code=400)
        answer: dict[str, str]
        if self.deny:
            answer = {"error": "access_denied"}
        elif not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
            answer = {"error": "invalid_request", "error_description": "PKCE with S256 is required"}
        else:
            code = secrets.token_urlsafe(16)
            self._grants[code] = _Grant(
                flavour=flavour,
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                code_challenge=query["code_challenge"],
                scope=query.get("scope", ""),
                nonce=query.get("nonce"),
            )
            answer = {"code": code}
        if "state" in query:
            answer["state"] = query["state"]
        return Redirect(_with_query(redirect_uri, answer), status_code=302)

    def _token(self, flavour: Flavour, request: Request[Any, Any, Any], raw: dict[str, Any]) -> Response[Any]:
        form = {key: str(value) for key, value in raw.items()}
        client_auth: Literal["basic", "post", "none"] = "none"
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if basic := _basic_credentials(request):
            client_auth, (client_id, client_secret) = "basic", basic
        elif client_secret is not None:
            client_auth = "post"
        self.token_requests.append(TokenRequest(flavour, form, client_auth))

        if client_id != self.client_id or client_secret != self.client_secret:
            return _token_error(flavour, "incorrect_client_credentials", "invalid_client", 401)
        grant = self._grants.get(form.get("code", ""))
        if grant is None or grant.used or grant.flavour != flavour:
            return _token_error(flavour, "bad_verification_code", "invalid_grant", 400)
        grant.used = True  # a code is spent by any attempt, as at the real providers
        if form.get("redirect_uri") != grant.redirect_uri:
            return _token_error(flavour, "redirect_uri_mismatch", "invalid_grant", 400)
        if _s256(form.get("code_verifier", "")) != grant.code_challenge:
            return _token_error(flavour, "bad_verification_code", "invalid_grant", 400)

        access_token = ("gho_" if flavour == "github" else "ya29.") + secrets.token_urlsafe(24)
        self._access_tokens[access_token] = flavour
        if flavour == "github":
            return Response({"access_token": access_token, "token_type": "bearer", "scope": grant.scope})
        body = {
            "access_token": access_token,
            "id_token": self.id_token(nonce=grant.nonce),
            "token_type": "Bearer",
            "expires_in": 3599,
            "scope": grant.scope,
        }
        return Response(body)

    def _bearer_of(self, request: Request[Any, Any, Any], flavour: Flavour) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        # GitHub takes ``token <t>`` as well as ``Bearer <t>``.
        return scheme.lower() in {"bearer", "token"} and self._access_tokens.get(token.strip()) == flavour


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


def _basic_credentials(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    client_id, _, client_secret = base64.b64decode(value).decode().partition(":")
    # RFC 6749 2.3.1: both are form-encoded before they are joined.
    return unquote(client_id), unquote(client_secret)


def _token_error(flavour: Flavour, github_error: str, google_error: str, google_status: int) -> Response[Any]:
    # GitHub answers 200 with the error in the body; Google uses the status codes of RFC 6749.
    if flavour == "github":
        body = {"error": github_error, "error_description": github_error.replace("_", " ")}
        return Response(body, status_code=200)
    return Response({"error": google_error, "error_description": github_error}, status_code=google_status)


def _github_bad_credentials() -> Response[Any]:
    return Response({"message": "Bad credentials"}, status_code=401)


def fake_provider(client_id: str = "test-client", client_secret: str = "test-secret") -> Iterator[FakeProvider]:
    """A running :class:`FakeProvider`, for a fixture to yield from (``yield from fake_provider()``)."""
    with FakeProvider(client_id, client_secret) as provider:
        yield provider
