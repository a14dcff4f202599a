"""``X-HTTP-Method-Override`` for tus clients that can only send GET and POST (tus-js-client's
``overridePatchMethod``, clients behind proxies that pass nothing else): under the tus path, a POST
naming PATCH, DELETE or HEAD in that header is handled as that method.

It wraps the app's ASGI handler rather than sitting in Litestar's middleware list because Litestar
picks the route handler from the method before any middleware runs. Rewriting the scope's method
first means authentication, CSRF, token scopes, rate limits and the access log all see the method
the client meant, exactly as if it had sent it.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import MediaType, ScopeType
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, Message, Method, Receive, Scope, Send

from lfusys.tus.protocol import VERSION

OVERRIDE_HEADER = "x-http-method-override"
# Plain strings, as an ASGI server puts them in the scope.
_OVERRIDABLE: dict[str, Method] = {"PATCH": "PATCH", "DELETE": "DELETE", "HEAD": "HEAD"}


class MethodOverride:
    """Handles a POST under ``path`` that carries ``X-HTTP-Method-Override`` as the method it names
    (PATCH, DELETE or HEAD, in any case), and refuses any other value with a 400. Everywhere else,
    and on any other method, the header means nothing."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "POST" and self._covers(scope["path"]):
            wanted = _override(scope)
            if wanted is not None:
                method = _OVERRIDABLE.get(wanted.strip().upper())
                if method is None:
                    await _refusal()(scope, receive, send)
                    return
                scope["method"] = method
                if method == "HEAD":
                    send = _without_body(send)
        await self.app(scope, receive, send)

    def _covers(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path + "/")


def _override(scope: Scope) -> str | None:
    """The header's value (several lines joined, so that they never name one method), or None."""
    values = [value.decode("latin-1") for name, value in scope["headers"] if name == OVERRIDE_HEADER.encode()]
    return ", ".join(values) if values else None


def _without_body(send: Send) -> Send:
    """``send`` for a HEAD that came as a POST: the server sends what the app gives (a real HEAD's body
    it would drop), so the body is dropped here, and the length said to be 0 to match."""

    async def send_without_body(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableScopeHeaders.from_message(message)["content-length"] = "0"
        elif message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_without_body


def _refusal() -> ASGIResponse:
    # Shaped like every other tus error: one line of plain text, with the protocol's version.
    return ASGIResponse(
        body="X-HTTP-Method-Override must be PATCH, DELETE or HEAD\n",
        status_code=400,
        media_type=MediaType.TEXT,
        headers={"Tus-Resumable": VERSION},
    )
