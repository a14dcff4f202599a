"""Who is calling: a personal API token (``Authorization: Bearer``) or the browser's cookies, on every
request, and the guard that requires a user.

A request with a bearer token is judged by the token alone: its cookies are ignored. The middleware
never rejects a request itself (public routes such as login must work with a stale cookie); it records
the user, or why there is none, and :func:`requires_user` turns a missing user into a 401 — or a
token without the route's scope into a 403 — before the handler reads the body.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import AbstractAuthenticationMiddleware, AuthenticationResult

from lfusys.auth.api_tokens import TokenAuth
from lfusys.auth.records import User
from lfusys.errors import Forbidden, NotAuthenticated
from lfusys.services import services_from

TOKEN_SCOPE_OPT = "token_scope"  # noqa: S105 - a key name, not a secret
"""Route opt: the API-token scope a route needs (``upload``, ``read``, ``delete``, or :data:`ANY_SCOPE`).
Routes without it take no token: they need the signed-in browser session."""
ANY_SCOPE = "any"


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


class CookieAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        services = services_from(connection.app.state)
        presented = bearer_token(connection)
        if presented is not None:
            try:
                api_token = await services.api_tokens.authenticate(presented)
                user = await services.auth.caller(api_token.user_id)
            except NotAuthenticated as exc:
                return AuthenticationResult(user=None, auth=exc.message)
            return AuthenticationResult(user=user, auth=TokenAuth(token_id=api_token.id, scopes=api_token.scopes))
        token = connection.cookies.get(services.cookies.access_name)
        try:
            user, claims = await services.auth.authenticate(token)
        except NotAuthenticated as exc:
            return AuthenticationResult(user=None, auth=exc.message)
        return AuthenticationResult(user=user, auth=claims)


async def requires_user(connection: ASGIConnection[Any, Any, Any, Any], route: BaseRouteHandler) -> None:
    """Guard: 401 unless the request carries a valid access token of an active sign-in or a valid API
    token; 403 for an API token on a route outside its scopes (or one that needs the browser session).

    Async, like every guard here: Litestar runs a plain function guard in a worker thread.
    """
    auth = connection.scope.get("auth")
    if connection.scope.get("user") is None:
        raise NotAuthenticated(auth if isinstance(auth, str) else "not signed in")
    if isinstance(auth, TokenAuth):
        needed = route.opt.get(TOKEN_SCOPE_OPT)
        if needed is None:
            raise Forbidden("an API token cannot do this: it needs a signed-in browser session")
        if needed != ANY_SCOPE and needed not in auth.scopes:
            raise Forbidden(f"this API token lacks the {needed!r} scope")


async def provide_current_user(request: ASGIConnection[Any, Any, Any, Any]) -> User:
    """Dependency ``current_user``: the signed-in user (use with the :func:`requires_user` guard)."""
    user = request.scope.get("user")
    if not isinstance(user, User):
        raise NotAuthenticated("not signed in")
    return user
