"""The in-process interfaces between domain code and storage backends.

Domain modules depend only on these Protocols and records; each backend (``storage/local`` now,
``storage/aws`` later) provides adapters that pass the shared contract tests in
``tests/contract``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Protocol

import msgspec


class EmailTaken(Exception):
    """Raised by :meth:`UserStore.create` when the (normalised) email already has an account."""


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    email: str
    """Normalised (lower-case) address; unique across users."""
    name: str
    password_hash: str | None
    """``None`` for accounts that only sign in through an OAuth provider."""
    created_at: datetime

    @property
    def providers(self) -> tuple[str, ...]:
        return ("password",) if self.password_hash is not None else ()


class RefreshToken(msgspec.Struct, frozen=True, kw_only=True):
    jti: str
    family_id: str
    user_id: str
    expires_at: datetime


class RefreshOutcome(enum.Enum):
    """What happened when a refresh token was presented for rotation."""

    ROTATED = "rotated"
    """It was current: it is now spent and the caller may issue its successor."""
    REUSED = "reused"
    """It had already been rotated: somebody replayed it."""
    REVOKED = "revoked"
    """Its family was revoked (logout or an earlier replay)."""
    UNKNOWN = "unknown"
    """No such token was ever issued here."""


class UserStore(Protocol):
    async def create(self, user: User) -> None:
        """Insert ``user``; raise :class:`EmailTaken` if its email exists (one winner under races)."""
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...


class TokenStore(Protocol):
    """Refresh-token families: one family per sign-in, one live token per family."""

    async def start_family(self, family_id: str, user_id: str, now: datetime) -> None: ...

    async def add_refresh_token(self, token: RefreshToken) -> None: ...

    async def spend_refresh_token(self, jti: str, now: datetime) -> RefreshOutcome:
        """Mark ``jti`` as rotated if it is current; exactly one concurrent caller gets ROTATED."""
        ...

    async def revoke_family(self, family_id: str, now: datetime) -> None: ...

    async def is_family_active(self, family_id: str) -> bool: ...


class MetadataStore(Protocol):
    """The bundle of metadata stores one backend provides, plus its health check."""

    @property
    def users(self) -> UserStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    async def ping(self) -> None:
        """Raise if the store cannot serve requests."""
        ...
