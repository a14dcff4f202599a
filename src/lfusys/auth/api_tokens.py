"""Personal API tokens: for scripts and the ``lfusys`` command line, each acting as its user within its
scopes.

A token reads ``lfusys_<id>_<secret>``: the recognisable prefix lets secret scanners find leaked ones,
the id finds its record with one consistent read (so a revoked token is refused at once, on every
replica), and only the SHA-256 of the secret is stored. The secret is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import timedelta

import msgspec
import structlog

from lfusys.auth.records import TOKEN_SCOPES, ApiToken
from lfusys.clock import Clock, utc_now
from lfusys.errors import InvalidInput, NotAuthenticated, NotFound
from lfusys.storage.ports import ApiTokenStore

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "lfusys_"  # noqa: S105 - the public prefix, not a secret
_TOKEN = re.compile(r"^lfusys_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_USE_RECORDED_EVERY = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token (not on every chunk)."""
MAX_TOKENS_PER_USER = 100
_REFUSED = "invalid, expired or revoked API token"


class TokenAuth(msgspec.Struct, frozen=True, kw_only=True):
    """How a request authenticated with a token is known (``scope["auth"]``)."""

    token_id: str
    scopes: tuple[str, ...]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def clean_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """``scopes`` in their canonical order; at least one, each known, none twice."""
    unknown = sorted(set(scopes) - set(TOKEN_SCOPES))
    if unknown:
        raise InvalidInput(f"scopes: unknown scope {unknown[0]!r} (choose from {', '.join(TOKEN_SCOPES)})")
    if not scopes:
        raise InvalidInput("scopes: choose at least one")
    if len(set(scopes)) != len(scopes):
        raise InvalidInput("scopes: each scope once")
    return tuple(scope for scope in TOKEN_SCOPES if scope in scopes)


class ApiTokens:
    def __init__(self, store: ApiTokenStore, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    async def create(
        self, user_id: str, *, name: str, scopes: Sequence[str], expires_in_days: int | None
    ) -> tuple[ApiToken, str]:
        """A new token and its secret (the only time the secret exists outside the caller's hands)."""
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise InvalidInput("name: must be 1 to 100 characters")
        if len(await self._store.list_for(user_id)) >= MAX_TOKENS_PER_USER:
            raise InvalidInput(f"at most {MAX_TOKENS_PER_USER} tokens per user: revoke one first")
        now = self._clock()
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        token = ApiToken(
            id=token_id,
            user_id=user_id,
            name=name,
            scopes=clean_scopes(scopes),
            secret_hash=_digest(secret),
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days is not None else None,
        )
        await self._store.add(token)
        log.info("api token created", token_id=token_id, scopes=list(token.scopes))
        return token, f"{TOKEN_PREFIX}{token_id}_{secret}"

    async def list(self, user_id: str) -> list[ApiToken]:
        return await self._store.list_for(user_id)

    async def revoke(self, user_id: str, token_id: str) -> None:
        if not await self._store.revoke(user_id, token_id, self._clock()):
            raise NotFound("token not found")
        log.info("api token revoked", token_id=token_id)

    async def authenticate(self, presented: str) -> ApiToken:
        """The token ``presented`` names, if it is this server's, unexpired and not revoked; else
        :class:`NotAuthenticated` (one message for every reason)."""
        match = _TOKEN.match(presented.strip())
        if match is None:
            raise NotAuthenticated(_REFUSED)
        token_id, secret = match.groups()
        token = await self._store.get(token_id)
        now = self._clock()
        if token is None or not hmac.compare_digest(token.secret_hash, _digest(secret)) or not token.usable_at(now):
            raise NotAuthenticated(_REFUSED)
        if token.last_used_at is None or now - token.last_used_at >= _USE_RECORDED_EVERY:
            await self._store.mark_used(token.id, now)
        return token
