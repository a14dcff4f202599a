"""Applies each route's limit, named by its ``opt`` (``rate_limit``), before the route does any work.

It runs after authentication (the API limit counts per user) and before CSRF and the handler, so a
refused request costs one KV call. Routes without the key (health, metrics, the web app, the API
docs) are never limited. Every answer of a limited route, refusals included, carries the
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` of the tightest limit the
request was counted against (the login handler adds its per-email count to the same list).
"""

from __future__ import annotations

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_429_TOO_MANY_REQUESTS
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from lfusys.errors import ErrorBody
from lfusys.rate_limits.limits import RATE_LIMIT_OPT, TOO_MANY_REQUESTS, Rule, counted, tightest
from lfusys.services import services_from


class RateLimitMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        rule = scope["route_handler"].opt.get(RATE_LIMIT_OPT)
        if rule is None:
            await next_app(scope, receive, send)
            return
        verdict = await services_from(scope["litestar_app"].state).rate_limits.admit(scope, Rule(rule))
        send = _with_rate_limit_headers(scope, send)
        if verdict is not None and verdict.exceeded:
            refusal = ASGIResponse(
                body=msgspec.json.encode(ErrorBody(TOO_MANY_REQUESTS)),
                status_code=HTTP_429_TOO_MANY_REQUESTS,
                media_type="application/json",
                headers={"retry-after": str(verdict.reset)},
            )
            await refusal(scope, receive, send)
            return
        await next_app(scope, receive, send)


def _with_rate_limit_headers(scope: Scope, send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            verdict = tightest(counted(scope))
            if verdict is not None:
                headers = MutableScopeHeaders.from_message(message)
                headers["ratelimit-limit"] = str(verdict.limit)
                headers["ratelimit-remaining"] = str(verdict.remaining)
                headers["ratelimit-reset"] = str(verdict.reset)
        await send(message)

    return send_with_headers
