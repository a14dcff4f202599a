"""The behaviour every UserStore / TokenStore adapter must have."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lfusys.auth.records import EmailTaken, RefreshOutcome, RefreshToken, User
from lfusys.storage.ports import Backend

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NO_GRACE = timedelta(0)


def a_user(email: str = "ada@example.com", password_hash: str | None = "$argon2id$fake") -> User:
    return User(id=uuid.uuid4().hex, email=email, name="Ada", password_hash=password_hash, created_at=NOW)


async def a_family(store: Backend, user: User) -> tuple[str, RefreshToken]:
    family_id = uuid.uuid4().hex
    await store.tokens.start_family(family_id, user.id, NOW)
    token = RefreshToken(
        jti=uuid.uuid4().hex, family_id=family_id, user_id=user.id, expires_at=NOW + timedelta(days=30)
    )
    await store.tokens.add_refresh_token(token)
    return family_id, token


async def test_a_created_user_can_be_read_by_id_and_email(backend: Backend) -> None:
    user = a_user()
    await backend.users.create(user)

    assert await backend.users.get(user.id) == user
    assert await backend.users.get_by_email("ada@example.com") == user
    assert await backend.users.get("missing") is None
    assert await backend.users.get_by_email("missing@example.com") is None


async def test_a_user_without_password_has_no_password_provider(backend: Backend) -> None:
    user = a_user(password_hash=None)
    await backend.users.create(user)

    stored = await backend.users.get(user.id)
    assert stored is not None
    assert stored.password_hash is None
    assert stored.providers == ()


async def test_a_second_user_with_the_same_email_is_refused(backend: Backend) -> None:
    first = a_user()
    await backend.users.create(first)

    with pytest.raises(EmailTaken):
        await backend.users.create(a_user())

    assert await backend.users.get_by_email("ada@example.com") == first


async def test_concurrent_creates_of_one_email_have_one_winner(backend: Backend) -> None:
    users = [a_user() for _ in range(10)]

    results = await asyncio.gather(*(backend.users.create(u) for u in users), return_exceptions=True)

    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, EmailTaken) for r in results if r is not None)


async def test_set_password_hash_replaces_the_hash(backend: Backend) -> None:
    user = a_user()
    await backend.users.create(user)

    await backend.users.set_password_hash(user.id, "$argon2id$new")

    stored = await backend.users.get(user.id)
    assert stored is not None
    assert stored.password_hash == "$argon2id$new"


async def test_a_current_refresh_token_is_spent_once(backend: Backend) -> None:
    user = a_user()
    await backend.users.create(user)
    _, token = await a_family(backend, user)

    assert await backend.tokens.spend_refresh_token(token.jti, NOW, NO_GRACE) is RefreshOutcome.ROTATED
    assert await backend.tokens.spend_refresh_token(token.jti, NOW, NO_GRACE) is RefreshOutcome.REUSED


async def test_a_spent_token_presented_again_within_the_grace_window_is_recently_rotated(
    backend: Backend,
) -> None:
    user = a_user()
    await backend.users.create(user)
    _, token = await a_family(backend, user)
    grace = timedelta(seconds=30)
    spend = backend.tokens.spend_refresh_token

    assert await spend(token.jti, NOW, grace) is RefreshOutcome.ROTATED
    assert await spend(token.jti, NOW + timedelta(seconds=1), grace) is RefreshOutcome.RECENTLY_ROTATED
    assert await spend(token.jti, NOW + grace - timedelta(milliseconds=1), grace) is RefreshOutcome.RECENTLY_ROTATED
    assert await spend(token.jti, NOW + grace, grace) is RefreshOutcome.REUSED


async def test_concurrent_spends_of_one_token_rotate_exactly_once(backend: Backend) -> None:
    user = a_user()
    await backend.users.create(user)
    _, token = await a_family(backend, user)

    outcomes = await asyncio.gather(*(backend.tokens.spend_refresh_token(token.jti, NOW, NO_GRACE) for _ in range(10)))

    assert outcomes.count(RefreshOutcome.ROTATED) == 1
    assert outcomes.count(RefreshOutcome.REUSED) == 9


async def test_an_unknown_token_is_unknown(backend: Backend) -> None:
    assert await backend.tokens.spend_refresh_token("nope", NOW, NO_GRACE) is RefreshOutcome.UNKNOWN


async def test_revoking_a_family_ends_all_its_tokens_and_only_them(backend: Backend) -> None:
    user = a_user()
    await backend.users.create(user)
    family, token = await a_family(backend, user)
    other_family, other_token = await a_family(backend, user)

    await backend.tokens.revoke_family(family, NOW)
    await backend.tokens.revoke_family(family, NOW)  # idempotent

    assert not await backend.tokens.is_family_active(family)
    assert await backend.tokens.spend_refresh_token(token.jti, NOW, NO_GRACE) is RefreshOutcome.REVOKED
    assert await backend.tokens.is_family_active(other_family)
    assert await backend.tokens.spend_refresh_token(other_token.jti, NOW, NO_GRACE) is RefreshOutcome.ROTATED


async def test_an_unknown_family_is_not_active(backend: Backend) -> None:
    assert not await backend.tokens.is_family_active("nope")


async def test_every_health_check_answers(backend: Backend) -> None:
    assert backend.checks  # readiness has something to ask
    for check in backend.checks.values():
        await check()
