"""CSRF protection for cookie-authenticated requests: double submit, with the token from the header only.

Litestar's own middleware also accepts the token from a ``_csrf_token`` form field, which means reading
(and buffering) a form-typed body before the handler runs; a token in a form field is also what a
cross-site form would carry. This one keeps Litestar's token format and cookie handling and looks at
the ``X-CSRF-Token`` header alone, so it never touches a request body.
"""

from __future__ import annotations

from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.csrf import CSRFMiddleware, generate_csrf_token
from litestar.types import Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from lfusys.auth.api_tokens import TokenAuth

CSRF_HEADER = "x-csrf-token"


class HeaderCSRFMiddleware(CSRFMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A request authenticated by an API token carries no ambient credential a cross-site page could
        # use (a browser never adds an Authorization header by itself): nothing to protect.
        if (
            scope["type"] != ScopeType.HTTP
            or isinstance(scope.get("auth"), TokenAuth)
            or should_bypass_middleware(
                scope=scope,
                scopes=self.scopes,
                exclude_opt_key=self.config.exclude_from_csrf_key,
                exclude_path_pattern=self.exclude,
            )
        ):
            await self.app(scope, receive, send)
            return
        request: Any = scope["litestar_app"].request_class(scope=scope, receive=receive)
        cookie = request.cookies.get(self.config.cookie_name)
        state = ScopeState.from_scope(scope)
        if request.method in self.config.safe_methods:
            token = state.csrf_token = cookie or generate_csrf_token(secret=self.config.secret)
            await self.app(scope, receive, self.create_send_wrapper(send=send, csrf_cookie=cookie, token=token))
            return
        header = request.headers.get(self.config.header_name)
        # compare_digest refuses non-ASCII text with a TypeError: such a token is simply wrong.
        if not (
            header and cookie and header.isascii() and cookie.isascii() and self._csrf_tokens_match(header, cookie)
        ):
            raise PermissionDeniedException("CSRF token verification failed")
        state.csrf_token = header
        await self.app(scope, receive, send)


def csrf_config(*, secret: str, cookie_name: str, secure: bool) -> CSRFConfig:
    return CSRFConfig(
        secret=secret,
        cookie_name=cookie_name,
        cookie_secure=secure,
        cookie_samesite="lax",
        header_name=CSRF_HEADER,
    )
