"""The records of accounts and sign-ins, as the auth module and every store adapter know them."""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec


class EmailTaken(Exception):
    """Raised by :meth:`UserStore.create` when the (normalised) email already has an account."""


class IdentityTaken(Exception):
    """Raised by :meth:`UserStore.create_with_identity` when the sign-in identity is already linked to a
    user (sign that user in instead)."""

    def __init__(self, provider: str, provider_user_id: str) -> None:
        super().__init__(f"{provider} identity {provider_user_id} is linked to another user")
        self.provider = provider
        self.provider_user_id = provider_user_id


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

    def without_secrets(self) -> User:
        """The account as a request's caller is known (and cached): the password hash stays in the store;
        :data:`HASH_WITHHELD` stands in for it, so ``providers`` still holds."""
        return msgspec.structs.replace(self, password_hash=None if self.password_hash is None else HASH_WITHHELD)


HASH_WITHHELD = "withheld"
"""Stands in for a password hash not carried along (:meth:`User.without_secrets`); no password verifies
against it. Verify a password against the account read from the store."""


class RefreshToken(msgspec.Struct, frozen=True, kw_only=True):
    jti: str
    family_id: str
    user_id: str
    expires_at: datetime


class RefreshOutcome(enum.Enum):
    """What happened when a refresh token was presented for rotation."""

    ROTATED = "rotated"
    """It was current: it is now spent and the caller may issue its successor."""
    RECENTLY_ROTATED = "recently_rotated"
    """It was rotated within the grace window (two tabs, a lost response): the caller may issue
    another successor, and the family stays valid."""
    REUSED = "reused"
    """It had been rotated before the grace window: somebody replayed it."""
    REVOKED = "revoked"
    """Its family was revoked (logout or an earlier replay)."""
    UNKNOWN = "unknown"
    """No such token was ever issued here."""


TOKEN_SCOPES = ("upload", "read", "delete")
"""What a personal API token may do: ``upload`` (start, resume, send and cancel uploads), ``read``
(list and download files), ``delete`` (delete files)."""


class ApiToken(msgspec.Struct, frozen=True, kw_only=True):
    """A personal API token. Its secret is kept only as a SHA-256 hash."""

    id: str
    user_id: str
    name: str
    scopes: tuple[str, ...]
    secret_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
