"""SQLite adapters for users and refresh-token families."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from lfusys.auth.records import ApiToken, EmailTaken, IdentityTaken, RefreshOutcome, RefreshToken, User
from lfusys.storage.local.database import Database, db_time, from_db_time


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        password_hash=row["password_hash"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _insert_user(connection: sqlite3.Connection, user: User) -> None:
    try:
        connection.execute(
            "INSERT INTO users (id, email, name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            (user.id, user.email, user.name, user.password_hash, db_time(user.created_at)),
        )
    except sqlite3.IntegrityError as exc:
        if "users.email" in str(exc):
            raise EmailTaken(user.email) from None
        raise


_LINK = (
    "INSERT INTO user_identities (provider, provider_user_id, user_id, linked_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (provider, provider_user_id) DO NOTHING"
)
_LINKED_USER = "SELECT user_id FROM user_identities WHERE provider = ? AND provider_user_id = ?"


class SqliteUserStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(self, user: User) -> None:
        await self._db.run(lambda connection: _insert_user(connection, user))

    async def create_with_identity(self, user: User, provider: str, provider_user_id: str) -> None:
        def create(connection: sqlite3.Connection) -> None:
            if connection.execute(_LINKED_USER, (provider, provider_user_id)).fetchone():
                raise IdentityTaken(provider, provider_user_id)
            _insert_user(connection, user)
            connection.execute(_LINK, (provider, provider_user_id, user.id, db_time(user.created_at)))

        await self._db.transaction(create)

    async def link_identity(self, user_id: str, provider: str, provider_user_id: str, now: datetime) -> str:
        def link(connection: sqlite3.Connection) -> str:
            connection.execute(_LINK, (provider, provider_user_id, user_id, db_time(now)))
            linked: str = connection.execute(_LINKED_USER, (provider, provider_user_id)).fetchone()["user_id"]
            return linked

        return await self._db.transaction(link)

    async def get_by_identity(self, provider: str, provider_user_id: str) -> User | None:
        row = await self._db.fetch_one(
            "SELECT u.* FROM user_identities i JOIN users u ON u.id = i.user_id"
            " WHERE i.provider = ? AND i.provider_user_id = ?",
            (provider, provider_user_id),
        )
        return _user(row) if row else None

    async def identities(self, user_id: str) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT provider FROM user_identities WHERE user_id = ? ORDER BY provider", (user_id,)
        )
        return [row["provider"] for row in rows]

    async def get(self, user_id: str) -> User | None:
        row = await self._db.fetch_one("SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = await self._db.fetch_one("SELECT * FROM users WHERE email = ?", (email,))
        return _user(row) if row else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


class SqliteTokenStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def start_family(self, family_id: str, user_id: str, now: datetime) -> None:
        await self._db.execute(
            "INSERT INTO token_families (id, user_id, created_at) VALUES (?, ?, ?)",
            (family_id, user_id, db_time(now)),
        )

    async def add_refresh_token(self, token: RefreshToken) -> None:
        await self._db.execute(
            "INSERT INTO refresh_tokens (jti, family_id, expires_at) VALUES (?, ?, ?)",
            (token.jti, token.family_id, db_time(token.expires_at)),
        )

    async def spend_refresh_token(self, jti: str, now: datetime, grace: timedelta) -> RefreshOutcome:
        def spend(connection: sqlite3.Connection) -> RefreshOutcome:
            row = connection.execute(
                "SELECT t.rotated_at, f.revoked_at FROM refresh_tokens t"
                " JOIN token_families f ON f.id = t.family_id WHERE t.jti = ?",
                (jti,),
            ).fetchone()
            if row is None:
                return RefreshOutcome.UNKNOWN
            if row["revoked_at"] is not None:
                return RefreshOutcome.REVOKED
            if row["rotated_at"] is not None:
                if now - from_db_time(row["rotated_at"]) < grace:
                    return RefreshOutcome.RECENTLY_ROTATED
                return RefreshOutcome.REUSED
            connection.execute("UPDATE refresh_tokens SET rotated_at = ? WHERE jti = ?", (db_time(now), jti))
            return RefreshOutcome.ROTATED

        return await self._db.transaction(spend)

    async def revoke_family(self, family_id: str, now: datetime) -> None:
        await self._db.execute(
            "UPDATE token_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (db_time(now), family_id),
        )

    async def is_family_active(self, family_id: str) -> bool:
        row = await self._db.fetch_one("SELECT 1 FROM token_families WHERE id = ? AND revoked_at IS NULL", (family_id,))
        return row is not None


def _api_token(row: sqlite3.Row) -> ApiToken:
    def moment(value: str | None) -> datetime | None:
        return from_db_time(value) if value is not None else None

    return ApiToken(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        scopes=tuple(row["scopes"].split()),
        secret_hash=row["secret_hash"],
        created_at=from_db_time(row["created_at"]),
        expires_at=moment(row["expires_at"]),
        last_used_at=moment(row["last_used_at"]),
        revoked_at=moment(row["revoked_at"]),
    )


class SqliteApiTokenStore:
    """The ApiTokenStore port over the ``api_tokens`` table."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, token: ApiToken) -> None:
        await self._db.execute(
            "INSERT INTO api_tokens (id, user_id, name, scopes, secret_hash, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                token.id,
                token.user_id,
                token.name,
                " ".join(token.scopes),
                token.secret_hash,
                db_time(token.created_at),
                db_time(token.expires_at) if token.expires_at else None,
            ),
        )

    async def get(self, token_id: str) -> ApiToken | None:
        row = await self._db.fetch_one("SELECT * FROM api_tokens WHERE id = ?", (token_id,))
        return _api_token(row) if row else None

    async def list_for(self, user_id: str) -> list[ApiToken]:
        rows = await self._db.fetch_all(
            "SELECT * FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id DESC",
            (user_id,),
        )
        return [_api_token(row) for row in rows]

    async def revoke(self, user_id: str, token_id: str, now: datetime) -> bool:
        changed = await self._db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
            (db_time(now), token_id, user_id),
        )
        return changed > 0

    async def mark_used(self, token_id: str, now: datetime) -> None:
        await self._db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (db_time(now), token_id))
