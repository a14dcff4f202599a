"""How many requests a client address, a sign-in email and a user may make, counted in fixed windows.

The counts live in the KV (``Services.kv``): with Redis every process of a deployment shares them,
in-process each process counts its own. A KV that does not answer lets requests through (fail open):
the limits protect the service and must not take it down with them.

Every count a request makes is kept on its scope, so its answer can say where it stands
(``RateLimit-*`` headers of the tightest limit, see ``middleware.py``).
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import math
import time
import unicodedata
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from litestar.types import Scope

from lfusys.auth.api_tokens import TokenAuth
from lfusys.auth.records import User
from lfusys.auth.service import normalise_email
from lfusys.errors import InvalidInput, TooManyRequests
from lfusys.forwarded import parse_address
from lfusys.observability.metrics import RATE_LIMITED
from lfusys.settings import RateLimitSettings
from lfusys.storage.ports import KV, KVUnavailable, WindowCount

log = structlog.get_logger(__name__)

RATE_LIMIT_OPT = "rate_limit"
"""The route ``opt`` key naming the route's :class:`Rule`; a route without it is never limited."""
TOO_MANY_REQUESTS = "too many requests"
_SCOPE_KEY = "lfusys.rate_limits"
_IPV6_CLIENT_PREFIX = 64
"""An IPv6 client is counted by its /64: one subscriber usually holds a whole /64, and could otherwise
take a fresh address for every request."""
_UNAVAILABLE_LOG_INTERVAL = 60.0


class Rule(enum.StrEnum):
    """Which limit a route's requests count against."""

    LOGIN = "login"
    """Sign-in: per client address (and per target email, counted by the handler)."""
    REGISTER = "register"
    AUTH = "auth"
    """The other ``/auth`` routes, per client address."""
    API = "api"
    """The rest of the API, per signed-in user (per client address without one)."""


class Limit(msgspec.Struct, frozen=True):
    name: str
    allowed: int
    """Requests per window; 0 turns the limit off."""
    window: timedelta


class Verdict(msgspec.Struct, frozen=True):
    """Where one request stands against one limit."""

    limit: int
    count: int
    """Requests in the window so far, this one included."""
    reset: int
    """Whole seconds (at least 1) until the window ends and the count starts again."""

    @classmethod
    def of(cls, limit: int, window: WindowCount) -> Verdict:
        return cls(limit=limit, count=window.count, reset=max(1, math.ceil(window.resets_in.total_seconds())))

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit


def counted(scope: Scope) -> list[Verdict]:
    """Every verdict this request got so far."""
    found: list[Verdict] = scope["state"].get(_SCOPE_KEY, [])
    return found


def tightest(verdicts: list[Verdict]) -> Verdict | None:
    """The verdict a client should heed: an exceeded one (the longest wait), else the fewest remaining."""
    return min(verdicts, key=lambda v: (not v.exceeded, v.remaining, -v.reset), default=None)


def client_subject(scope: Scope) -> str:
    """Whom a request without a user counts as: its client address (``ForwardedHeaders`` has put the
    real one in the scope), IPv6 by its /64."""
    client = scope.get("client")
    host: str | None = client[0] if client else None
    address = parse_address(host) if host else None
    if address is None:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, _IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


def email_subject(email: str) -> str:
    """A sign-in email as the limit counts it: normalised as accounts are (lower-case), then hashed, so
    the KV holds no addresses."""
    try:
        canonical = normalise_email(email)
    except InvalidInput:
        canonical = unicodedata.normalize("NFKC", email).strip().casefold()
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class RateLimits:
    def __init__(self, kv: KV, settings: RateLimitSettings) -> None:
        self._kv = kv
        minute = timedelta(minutes=1)
        self._by_rule = {
            Rule.LOGIN: Limit(name="login", allowed=settings.rate_limit_login, window=minute),
            Rule.REGISTER: Limit(name="register", allowed=settings.rate_limit_register, window=minute),
            Rule.AUTH: Limit(name="auth", allowed=settings.rate_limit_auth, window=minute),
            Rule.API: Limit(name="api", allowed=settings.rate_limit_api, window=minute),
        }
        self._login_email = Limit(
            name="login-email",
            allowed=settings.rate_limit_login_email,
            window=settings.rate_limit_login_email_window,
        )
        self._unavailable_logged_at: float | None = None

    async def admit(self, scope: Scope, rule: Rule) -> Verdict | None:
        """Count this request against its route's limit; None when it is not counted (the limit is
        off, or the KV did not answer)."""
        user, auth = scope.get("user"), scope.get("auth")
        if rule is Rule.API and isinstance(auth, TokenAuth):
            subject = f"token:{auth.token_id}"  # each script its own allowance
        elif rule is Rule.API and isinstance(user, User):
            subject = f"user:{user.id}"
        else:
            subject = f"ip:{client_subject(scope)}"
        return await self._count(scope, self._by_rule[rule], subject)

    async def admit_login(self, scope: Scope, email: str) -> None:
        """Count a sign-in attempt at ``email``, from anywhere; raise :class:`TooManyRequests` beyond
        the limit. Call it before the password is checked: a refused attempt costs no hash."""
        verdict = await self._count(scope, self._login_email, f"email:{email_subject(email)}")
        if verdict is not None and verdict.exceeded:
            raise TooManyRequests(TOO_MANY_REQUESTS, retry_after=verdict.reset)

    async def _count(self, scope: Scope, limit: Limit, subject: str) -> Verdict | None:
        if limit.allowed == 0:
            return None
        try:
            window = await self._kv.hit(f"rate:{limit.name}:{subject}", limit.window)
        except KVUnavailable:
            self._log_unavailable()
            return None
        verdict = Verdict.of(limit.allowed, window)
        if verdict.exceeded:
            RATE_LIMITED.labels(limit.name).inc()
        state: dict[str, Any] = scope["state"]
        state.setdefault(_SCOPE_KEY, []).append(verdict)
        return verdict

    def _log_unavailable(self) -> None:
        # Once a minute at most: during an outage every request would say it.
        now = time.monotonic()
        if self._unavailable_logged_at is None or now - self._unavailable_logged_at >= _UNAVAILABLE_LOG_INTERVAL:
            self._unavailable_logged_at = now
            log.warning("rate limits not applied: the KV store did not answer")
