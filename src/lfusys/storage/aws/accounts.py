"""Users and refresh-token families in DynamoDB.

One account per email is a conditional write: registering puts an ``emails`` item (email → user id)
only if none exists, together with the user in one transaction, so of two concurrent registrations
of one address exactly one succeeds. A sign-in identity is an ``identities`` item put only if none
exists, so its first link wins; a first sign-in writes it in the same transaction as the user.
Spending a refresh token is a conditional update of its ``rotated_at``, so exactly one concurrent
caller rotates it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from lfusys.auth.records import ApiToken, EmailTaken, IdentityTaken, RefreshOutcome, RefreshToken, User
from lfusys.storage.aws.clients import AwsClients
from lfusys.storage.aws.dynamo import Table, TransactionCancelled, expression, stamp, transact, unstamp

_KEPT_AFTER_EXPIRY = timedelta(days=1)
"""How long DynamoDB's TTL keeps a refresh token after it expired (its replay still revokes the family)."""


def _user(item: dict[str, Any]) -> User:
    return User(
        id=item["id"],
        email=item["email"],
        name=item["name"],
        password_hash=item.get("password_hash"),
        created_at=unstamp(item["created_at"]),
    )


def _identity_id(provider: str, provider_user_id: str) -> str:
    return f"{provider}#{provider_user_id}"


def _identity(user_id: str, provider: str, provider_user_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": _identity_id(provider, provider_user_id),
        "user_id": user_id,
        "provider": provider,
        "linked_at": stamp(now),
    }


def _refusal(user: User, exc: TransactionCancelled) -> Exception:
    """Why a transaction led by :meth:`DynamoUserStore._account_puts` was refused."""
    if exc.failed(0):
        return EmailTaken(user.email)
    if exc.failed(1):
        return ValueError(f"user {user.id} exists")
    return exc


class DynamoUserStore:
    """The UserStore port over the ``users``, ``emails`` and ``identities`` tables."""

    def __init__(self, clients: AwsClients) -> None:
        self._client = clients.dynamodb
        self._users = Table(clients.dynamodb, clients.names.table("users"))
        self._emails = Table(clients.dynamodb, clients.names.table("emails"))
        self._identities = Table(clients.dynamodb, clients.names.table("identities"))

    async def create(self, user: User) -> None:
        try:
            await transact(self._client, *self._account_puts(user))
        except TransactionCancelled as exc:
            raise _refusal(user, exc) from None

    async def create_with_identity(self, user: User, provider: str, provider_user_id: str) -> None:
        identity = _identity(user.id, provider, provider_user_id, user.created_at)
        try:
            await transact(
                self._client,
                *self._account_puts(user),
                self._identities.put_item(identity, expression("attribute_not_exists(#id)")),
            )
        except TransactionCancelled as exc:
            if exc.failed(2):
                raise IdentityTaken(provider, provider_user_id) from None
            raise _refusal(user, exc) from None

    def _account_puts(self, user: User) -> tuple[dict[str, Any], dict[str, Any]]:
        """The conditional puts of the email item and the user item, for :func:`transact`."""
        item = {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "password_hash": user.password_hash,
            "created_at": stamp(user.created_at),
        }
        return (
            self._emails.put_item(
                {"email": user.email, "user_id": user.id}, expression("attribute_not_exists(#email)")
            ),
            self._users.put_item(item, expression("attribute_not_exists(#id)")),
        )

    async def link_identity(self, user_id: str, provider: str, provider_user_id: str, now: datetime) -> str:
        identity = _identity(user_id, provider, provider_user_id, now)
        if await self._identities.put(identity, expression("attribute_not_exists(#id)")):
            return user_id
        winner = await self._identities.get({"id": identity["id"]})
        if winner is None:  # unlinked since: identities are never unlinked, so this is not expected
            raise RuntimeError(f"identity {identity['id']} vanished while being linked")
        linked: str = winner["user_id"]
        return linked

    async def get_by_identity(self, provider: str, provider_user_id: str) -> User | None:
        identity = await self._identities.get({"id": _identity_id(provider, provider_user_id)})
        return await self.get(identity["user_id"]) if identity else None

    async def identities(self, user_id: str) -> list[str]:
        items = self._identities.query(expression("#user_id = :user_id", user_id=user_id), index="by-user")
        return [item["provider"] async for item in items]

    async def get(self, user_id: str) -> User | None:
        item = await self._users.get({"id": user_id})
        return _user(item) if item else None

    async def get_by_email(self, email: str) -> User | None:
        owner = await self._emails.get({"email": email})
        return await self.get(owner["user_id"]) if owner else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._users.update(
            {"id": user_id},
            expression("SET #password_hash = :hash", hash=password_hash),
            expression("attribute_exists(#id)"),
        )


class DynamoTokenStore:
    """The TokenStore port over the ``token-families`` and ``refresh-tokens`` tables."""

    def __init__(self, clients: AwsClients) -> None:
        self._families = Table(clients.dynamodb, clients.names.table("token-families"))
        self._tokens = Table(clients.dynamodb, clients.names.table("refresh-tokens"))

    async def start_family(self, family_id: str, user_id: str, now: datetime) -> None:
        item = {"id": family_id, "user_id": user_id, "created_at": stamp(now)}
        if not await self._families.put(item, expression("attribute_not_exists(#id)")):
            raise ValueError(f"token family {family_id} exists")

    async def add_refresh_token(self, token: RefreshToken) -> None:
        item = {
            "jti": token.jti,
            "family_id": token.family_id,
            "user_id": token.user_id,
            "expires_at": stamp(token.expires_at),
            "ttl": int((token.expires_at + _KEPT_AFTER_EXPIRY).timestamp()),
        }
        if not await self._tokens.put(item, expression("attribute_not_exists(#jti)")):
            raise ValueError(f"refresh token {token.jti} exists")

    async def spend_refresh_token(self, jti: str, now: datetime, grace: timedelta) -> RefreshOutcome:
        token = await self._tokens.get({"jti": jti})
        family = await self._families.get({"id": token["family_id"]}) if token else None
        if token is None or family is None:
            return RefreshOutcome.UNKNOWN
        if "revoked_at" in family:
            return RefreshOutcome.REVOKED
        if "rotated_at" not in token:
            spent = await self._tokens.update(
                {"jti": jti},
                expression("SET #rotated_at = :now", now=stamp(now)),
                expression("attribute_not_exists(#rotated_at)"),
            )
            if spent is not None:
                return RefreshOutcome.ROTATED
            token = await self._tokens.get({"jti": jti})  # another caller rotated it just now
            if token is None or "rotated_at" not in token:
                return RefreshOutcome.UNKNOWN
        if now - unstamp(token["rotated_at"]) < grace:
            return RefreshOutcome.RECENTLY_ROTATED
        return RefreshOutcome.REUSED

    async def revoke_family(self, family_id: str, now: datetime) -> None:
        await self._families.update(
            {"id": family_id},
            expression("SET #revoked_at = :now", now=stamp(now)),
            expression("attribute_exists(#id) AND attribute_not_exists(#revoked_at)"),
        )

    async def is_family_active(self, family_id: str) -> bool:
        family = await self._families.get({"id": family_id})
        return family is not None and "revoked_at" not in family


def _api_token(item: dict[str, Any]) -> ApiToken:
    def moment(name: str) -> datetime | None:
        return unstamp(item[name]) if name in item else None

    return ApiToken(
        id=item["id"],
        user_id=item["user_id"],
        name=item["name"],
        scopes=tuple(item["scopes"].split()),
        secret_hash=item["secret_hash"],
        created_at=unstamp(item["created_at"]),
        expires_at=moment("expires_at"),
        last_used_at=moment("last_used_at"),
        revoked_at=moment("revoked_at"),
    )


class DynamoApiTokenStore:
    """The ApiTokenStore port over the ``api-tokens`` table."""

    def __init__(self, clients: AwsClients) -> None:
        self._tokens = Table(clients.dynamodb, clients.names.table("api-tokens"))

    async def add(self, token: ApiToken) -> None:
        item: dict[str, Any] = {
            "id": token.id,
            "user_id": token.user_id,
            "name": token.name,
            "scopes": " ".join(token.scopes),
            "secret_hash": token.secret_hash,
            "created_at": stamp(token.created_at),
            "created_key": f"{stamp(token.created_at)}#{token.id}",
        }
        if token.expires_at is not None:
            item["expires_at"] = stamp(token.expires_at)
        if not await self._tokens.put(item, expression("attribute_not_exists(#id)")):
            raise ValueError(f"token {token.id} exists")

    async def get(self, token_id: str) -> ApiToken | None:
        item = await self._tokens.get({"id": token_id})
        return _api_token(item) if item else None

    async def list_for(self, user_id: str) -> list[ApiToken]:
        items = self._tokens.query(
            expression("#user_id = :user_id", user_id=user_id), index="by-user", newest_first=True
        )
        tokens = [_api_token(item) async for item in items]
        return [token for token in tokens if token.revoked_at is None]

    async def revoke(self, user_id: str, token_id: str, now: datetime) -> bool:
        updated = await self._tokens.update(
            {"id": token_id},
            expression("SET #revoked_at = :now", now=stamp(now)),
            expression(
                "attribute_exists(#id) AND #user_id = :user_id AND attribute_not_exists(#revoked_at)", user_id=user_id
            ),
        )
        return updated is not None

    async def mark_used(self, token_id: str, now: datetime) -> None:
        await self._tokens.update(
            {"id": token_id},
            expression("SET #last_used_at = :now", now=stamp(now)),
            expression("attribute_exists(#id)"),
        )
