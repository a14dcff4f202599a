"""Request id and the access log, wrapped around the whole application.

It wraps the app's ASGI handler rather than sitting in Litestar's middleware list because that list
only runs for matched routes; 404s and 405s need a request id and an access line too.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping

import structlog
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from lfusys.auth.records import User
from lfusys.observability.tracing import name_server_span

log = structlog.get_logger("lfusys.access")

REQUEST_ID_HEADER = "x-request-id"
# An incoming id is honoured only if it is short and plain (it ends up in logs and headers).
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _incoming_request_id(scope: HTTPScope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            return text if _SANE_REQUEST_ID.match(text) else None
    return None


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Routed by now, and the request's span still open (it ends with the response).
                name_server_span(scope["method"], scope.get("path_template"))
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_request_id)
            finally:
                user = scope.get("user")
                client = scope.get("client")
                log.info(
                    "request",
                    method=scope["method"],
                    route=scope.get("path_template") or None,
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    user_id=user.id if isinstance(user, User) else None,
                    **_named_in_path(scope),
                    # The real client behind trusted proxies (lfusys.forwarded has put it in the scope).
                    client=client[0] if client else None,
                )


def _named_in_path(scope: Scope) -> dict[str, str]:
    """The upload or file a request is about, from its route's path parameters."""
    params: Mapping[str, object] = scope.get("path_params") or {}
    return {key: value for key in ("upload_id", "file_id") if isinstance(value := params.get(key), str)}


class LogContextMiddleware(ASGIMiddleware):
    """Names the signed-in user and the upload (or file) a request is about on every log line it writes;
    after authentication and routing, so both are known."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        user = scope.get("user")
        known = {**_named_in_path(scope), **({"user_id": user.id} if isinstance(user, User) else {})}
        with structlog.contextvars.bound_contextvars(**known):
            await next_app(scope, receive, send)
