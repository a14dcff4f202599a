"""Users and refresh-token families in this process's memory, kept in the account tables of
:class:`~lfusys.storage.memory.metadata.MemoryMetadata`.

Every method does its reading and writing without awaiting in between, so on the one event loop
each is atomic.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from msgspec.structs import replace

from lfusys.auth.records import ApiToken, EmailTaken, IdentityTaken, RefreshOutcome, RefreshToken, User
from lfusys.storage.memory.metadata import FamilyRow, MemoryMetadata, TokenRow


class MemoryUserStore:
    """The UserStore port: users by id, and their ids by (normalised) email and by sign-in identity."""

    def __init__(self, metadata: MemoryMetadata) -> None:
        self._users = metadata.users
        self._ids_by_email = metadata.user_ids_by_email
        self._ids_by_identity = metadata.user_ids_by_identity

    async def create(self, user: User) -> None:
        if user.email in self._ids_by_email:
            raise EmailTaken(user.email)
        if user.id in self._users:
            raise ValueError(f"user {user.id} exists")
        self._users[user.id] = user
        self._ids_by_email[user.email] = user.id

    async def create_with_identity(self, user: User, provider: str, provider_user_id: str) -> None:
        if (provider, provider_user_id) in self._ids_by_identity:
            raise IdentityTaken(provider, provider_user_id)
        await self.create(user)  # completes without suspending, so nothing runs in between
        self._ids_by_identity[provider, provider_user_id] = user.id

    async def link_identity(self, user_id: str, provider: str, provider_user_id: str, now: datetime) -> str:
        return self._ids_by_identity.setdefault((provider, provider_user_id), user_id)

    async def get_by_identity(self, provider: str, provider_user_id: str) -> User | None:
        user_id = self._ids_by_identity.get((provider, provider_user_id))
        return self._users.get(user_id) if user_id is not None else None

    async def identities(self, user_id: str) -> list[str]:
        return sorted(provider for (provider, _), owner in self._ids_by_identity.items() if owner == user_id)

    async def get(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        user_id = self._ids_by_email.get(email)
        return self._users[user_id] if user_id is not None else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        user = self._users.get(user_id)
        if user is not None:
            self._users[user_id] = replace(user, password_hash=password_hash)


class MemoryTokenStore:
    """The TokenStore port: families (revoked or not) and the tokens issued in them (spent or not)."""

    def __init__(self, metadata: MemoryMetadata) -> None:
        self._families = metadata.families
        self._tokens = metadata.refresh_tokens

    async def start_family(self, family_id: str, user_id: str, now: datetime) -> None:
        if family_id in self._families:
            raise ValueError(f"token family {family_id} exists")
        self._families[family_id] = FamilyRow(user_id=user_id)

    async def add_refresh_token(self, token: RefreshToken) -> None:
        if token.jti in self._tokens:
            raise ValueError(f"refresh token {token.jti} exists")
        self._tokens[token.jti] = TokenRow(family_id=token.family_id)

    async def spend_refresh_token(self, jti: str, now: datetime, grace: timedelta) -> RefreshOutcome:
        token = self._tokens.get(jti)
        family = self._families.get(token.family_id) if token else None
        if token is None or family is None:
            return RefreshOutcome.UNKNOWN
        if family.revoked_at is not None:
            return RefreshOutcome.REVOKED
        if token.rotated_at is not None:
            if now - token.rotated_at < grace:
                return RefreshOutcome.RECENTLY_ROTATED
            return RefreshOutcome.REUSED
        self._tokens[jti] = replace(token, rotated_at=now)
        return RefreshOutcome.ROTATED

    async def revoke_family(self, family_id: str, now: datetime) -> None:
        family = self._families.get(family_id)
        if family is not None and family.revoked_at is None:
            self._families[family_id] = replace(family, revoked_at=now)

    async def is_family_active(self, family_id: str) -> bool:
        family = self._families.get(family_id)
        return family is not None and family.revoked_at is None


class MemoryApiTokenStore:
    """The ApiTokenStore port: tokens by id."""

    def __init__(self, metadata: MemoryMetadata) -> None:
        self._tokens = metadata.api_tokens

    async def add(self, token: ApiToken) -> None:
        if token.id in self._tokens:
            raise ValueError(f"token {token.id} exists")
        self._tokens[token.id] = token

    async def get(self, token_id: str) -> ApiToken | None:
        return self._tokens.get(token_id)

    async def list_for(self, user_id: str) -> list[ApiToken]:
        mine = [t for t in self._tokens.values() if t.user_id == user_id and t.revoked_at is None]
        return sorted(mine, key=lambda token: (token.created_at, token.id), reverse=True)

    async def revoke(self, user_id: str, token_id: str, now: datetime) -> bool:
        token = self._tokens.get(token_id)
        if token is None or token.user_id != user_id or token.revoked_at is not None:
            return False
        self._tokens[token_id] = replace(token, revoked_at=now)
        return True

    async def mark_used(self, token_id: str, now: datetime) -> None:
        token = self._tokens.get(token_id)
        if token is not None:
            self._tokens[token_id] = replace(token, last_used_at=now)
