"""The behaviour every ApiTokenStore adapter must have."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from lfusys.auth.records import ApiToken, User
from lfusys.storage.ports import Backend

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def a_user(store: Backend, email: str) -> User:
    user = User(id=uuid.uuid4().hex, email=email, name="Ada", password_hash=None, created_at=NOW)
    await store.users.create(user)
    return user


def a_token(user: User, name: str = "laptop", minutes: int = 0, **fields: object) -> ApiToken:
    values: dict[str, object] = {
        "id": uuid.uuid4().hex[:16],
        "user_id": user.id,
        "name": name,
        "scopes": ("upload", "read"),
        "secret_hash": uuid.uuid4().hex * 2,
        "created_at": NOW + timedelta(minutes=minutes),
        **fields,
    }
    return ApiToken(**values)  # type: ignore[arg-type]


async def test_a_token_is_found_by_its_id_as_it_was_added(backend: Backend) -> None:
    ada = await a_user(backend, "ada@example.com")
    token = a_token(ada, expires_at=NOW + timedelta(days=30))

    await backend.api_tokens.add(token)

    assert await backend.api_tokens.get(token.id) == token
    assert await backend.api_tokens.get("no-such-token") is None


async def test_a_user_lists_their_own_tokens_newest_first(backend: Backend) -> None:
    ada, eve = await a_user(backend, "ada@example.com"), await a_user(backend, "eve@example.com")
    older, newer = a_token(ada, "older", minutes=1), a_token(ada, "newer", minutes=2)
    for token in (older, newer, a_token(eve, "eve's")):
        await backend.api_tokens.add(token)

    assert [token.name for token in await backend.api_tokens.list_for(ada.id)] == ["newer", "older"]
    assert await backend.api_tokens.list_for("nobody") == []


async def test_a_revoked_token_is_marked_at_once_and_no_longer_listed(backend: Backend) -> None:
    ada = await a_user(backend, "ada@example.com")
    token = a_token(ada)
    await backend.api_tokens.add(token)

    assert await backend.api_tokens.revoke(ada.id, token.id, NOW) is True

    found = await backend.api_tokens.get(token.id)
    assert found is not None
    assert found.revoked_at == NOW
    assert not found.usable_at(NOW)
    assert await backend.api_tokens.list_for(ada.id) == []
    assert await backend.api_tokens.revoke(ada.id, token.id, NOW) is False  # already revoked


async def test_only_its_owner_revokes_a_token(backend: Backend) -> None:
    ada, eve = await a_user(backend, "ada@example.com"), await a_user(backend, "eve@example.com")
    token = a_token(ada)
    await backend.api_tokens.add(token)

    assert await backend.api_tokens.revoke(eve.id, token.id, NOW) is False
    assert await backend.api_tokens.revoke(ada.id, "no-such-token", NOW) is False

    found = await backend.api_tokens.get(token.id)
    assert found is not None
    assert found.revoked_at is None


async def test_use_is_remembered(backend: Backend) -> None:
    ada = await a_user(backend, "ada@example.com")
    token = a_token(ada)
    await backend.api_tokens.add(token)

    await backend.api_tokens.mark_used(token.id, NOW + timedelta(hours=1))
    await backend.api_tokens.mark_used("no-such-token", NOW)  # nothing to remember: no error

    found = await backend.api_tokens.get(token.id)
    assert found is not None
    assert found.last_used_at == NOW + timedelta(hours=1)


def test_a_token_is_usable_until_it_expires() -> None:
    user = User(id="u", email="a@b.c", name="A", password_hash=None, created_at=NOW)
    token = a_token(user, expires_at=NOW + timedelta(days=1))

    assert token.usable_at(NOW + timedelta(hours=23))
    assert not token.usable_at(NOW + timedelta(days=1))
    assert a_token(user).usable_at(NOW + timedelta(days=3650))
