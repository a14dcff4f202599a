"""Access and refresh JWTs: HS256 only, separate secrets, typed claims."""

from __future__ import annotations

import enum
import secrets
from collections import OrderedDict
from datetime import datetime, timedelta

import jwt
import msgspec

_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "exp", "iat", "jti", "type", "fid"]
_REMEMBERED_TOKENS = 4096


class TokenType(enum.StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class TokenClaims(msgspec.Struct, frozen=True, kw_only=True):
    sub: str
    """The user id."""
    exp: int
    iat: int
    jti: str
    type: TokenType
    fid: str
    """The sign-in (refresh-token family) this token belongs to; logout revokes it."""


class InvalidToken(Exception):
    """The token cannot be used; the message is safe to show to the client."""


class TokenCodec:
    def __init__(
        self,
        *,
        access_secret: str,
        refresh_secret: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
    ) -> None:
        self._secrets = {TokenType.ACCESS: access_secret, TokenType.REFRESH: refresh_secret}
        self.ttl = {TokenType.ACCESS: access_ttl, TokenType.REFRESH: refresh_ttl}
        self._verified: OrderedDict[tuple[TokenType, str], TokenClaims] = OrderedDict()

    def issue(self, kind: TokenType, *, user_id: str, family_id: str, now: datetime) -> tuple[str, TokenClaims]:
        claims = TokenClaims(
            sub=user_id,
            iat=int(now.timestamp()),
            exp=int((now + self.ttl[kind]).timestamp()),
            jti=secrets.token_urlsafe(16),
            type=kind,
            fid=family_id,
        )
        encoded = jwt.encode(msgspec.to_builtins(claims), self._secrets[kind], algorithm=_ALGORITHM)
        return encoded, claims

    def decode(self, kind: TokenType, encoded: str, now: datetime) -> TokenClaims:
        """Verify signature (HS256 pinned), type and expiry at ``now``; raise :class:`InvalidToken`.

        A browser presents one access token for every request of its lifetime (every chunk of an
        upload), so tokens already verified are remembered (a bounded number, newest kept); expiry
        is still checked every time.
        """
        claims = self._verified.get((kind, encoded))
        if claims is None:
            claims = self._verify(kind, encoded)
            self._verified[(kind, encoded)] = claims
            if len(self._verified) > _REMEMBERED_TOKENS:
                self._verified.popitem(last=False)
        if claims.exp <= now.timestamp():
            raise InvalidToken(f"{kind} token expired")
        return claims

    def _verify(self, kind: TokenType, encoded: str) -> TokenClaims:
        try:
            payload = jwt.decode(
                encoded,
                self._secrets[kind],
                algorithms=[_ALGORITHM],
                # Time is checked below against the service's clock, not the library's.
                options={"require": _REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
            )
            claims = msgspec.convert(payload, TokenClaims)
        except (jwt.PyJWTError, msgspec.ValidationError):
            raise InvalidToken(f"invalid {kind} token") from None
        if claims.type is not kind:
            raise InvalidToken(f"invalid {kind} token")
        return claims
