"""Who is calling: cookie authentication on every request, and the guard that requires a user.

The middleware never rejects a request itself (public routes such as login must work with a stale
cookie); it records the user, or why there is none, and :func:`requires_user` turns a missing user
into a 401 before the handler reads the body.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import AbstractAuthenticationMiddleware, AuthenticationResult

from lfusys.auth.records import User
from lfusys.errors import NotAuthenticated
from lfusys.services import services_from


class CookieAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        services = services_from(connection.app.state)
        token = connection.cookies.get(services.cookies.access_name)
        try:
            user, claims = await services.auth.authenticate(token)
        except NotAuthenticated as exc:
            return AuthenticationResult(user=None, auth=exc.message)
        return AuthenticationResult(user=user, auth=claims)


async def requires_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 401 unless the request carries a valid access token of an active sign-in.

    Async, like every guard here: Litestar runs a plain function guard in a worker thread.
    """
    if connection.scope.get("user") is None:
        reason = connection.scope.get("auth")
        raise NotAuthenticated(reason if isinstance(reason, str) else "not signed in")


async def provide_current_user(request: ASGIConnection[Any, Any, Any, Any]) -> User:
    """Dependency ``current_user``: the signed-in user (use with the :func:`requires_user` guard)."""
    user = request.scope.get("user")
    if not isinstance(user, User):
        raise NotAuthenticated("not signed in")
    return user
