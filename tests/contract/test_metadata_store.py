"""The behaviour every UserStore / TokenStore adapter must have."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lfusys.auth.records import EmailTaken, IdentityTaken, RefreshOutcome, RefreshToken, User
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


async def test_a_linked_identity_finds_its_user(backend: Backend) -> None:
    user = a_user()
    await backend.users.create(user)

    assert await backend.users.link_identity(user.id, "github", "583231", NOW) == user.id

    assert await backend.users.get_by_identity("github", "583231") == user
    assert await backend.users.get_by_identity("google", "583231") is None
    assert await backend.users.get_by_identity("github", "missing") is None


async def test_an_identity_stays_with_the_user_it_was_linked_to_first(backend: Backend) -> None:
    first, second = a_user("ada@example.com"), a_user("grace@example.com")
    for user in (first, second):
        await backend.users.create(user)
    await backend.users.link_identity(first.id, "github", "583231", NOW)

    assert await backend.users.link_identity(second.id, "github", "583231", NOW) == first.id
    assert await backend.users.link_identity(first.id, "github", "583231", NOW) == first.id  # a repeat

    assert await backend.users.get_by_identity("github", "583231") == first
    assert await backend.users.identities(second.id) == []


async def test_concurrent_links_of_one_identity_have_one_winner(backend: Backend) -> None:
    users = [a_user(f"user{i}@example.com") for i in range(10)]
    for user in users:
        await backend.users.create(user)

    winners = await asyncio.gather(*(backend.users.link_identity(u.id, "google", "1077", NOW) for u in users))

    assert len(set(winners)) == 1
    assert winners[0] in {u.id for u in users}
    assert await backend.users.get_by_identity("google", "1077") == next(u for u in users if u.id == winners[0])


async def test_a_user_lists_the_providers_of_its_identities(backend: Backend) -> None:
    user, other = a_user("ada@example.com"), a_user("grace@example.com")
    for each in (user, other):
        await backend.users.create(each)
    await backend.users.link_identity(user.id, "google", "1077", NOW)
    await backend.users.link_identity(user.id, "github", "583231", NOW)
    await backend.users.link_identity(other.id, "github", "9", NOW)

    assert await backend.users.identities(user.id) == ["github", "google"]
    assert await backend.users.identities(other.id) == ["github"]
    assert await backend.users.identities("missing") == []


async def test_a_user_created_with_an_identity_is_found_by_it(backend: Backend) -> None:
    user = a_user(password_hash=None)

    await backend.users.create_with_identity(user, "github", "583231")

    assert await backend.users.get_by_identity("github", "583231") == user
    assert await backend.users.get_by_email(user.email) == user
    assert await backend.users.identities(user.id) == ["github"]


async def test_creating_with_a_taken_email_stores_nothing(backend: Backend) -> None:
    await backend.users.create(a_user())
    newcomer = a_user(password_hash=None)

    with pytest.raises(EmailTaken):
        await backend.users.create_with_identity(newcomer, "github", "583231")

    assert await backend.users.get(newcomer.id) is None
    assert await backend.users.get_by_identity("github", "583231") is None


async def test_creating_with_a_taken_identity_stores_nothing(backend: Backend) -> None:
    first = a_user("ada@example.com")
    await backend.users.create_with_identity(first, "github", "583231")
    newcomer = a_user("grace@example.com", password_hash=None)

    with pytest.raises(IdentityTaken):
        await backend.users.create_with_identity(newcomer, "github", "583231")

    assert await backend.users.get(newcomer.id) is None
    assert await backend.users.get_by_email("grace@example.com") is None
    assert await backend.users.get_by_identity("github", "583231") == first


async def test_concurrent_first_sign_ins_with_one_identity_create_one_user(backend: Backend) -> None:
    users = [a_user(f"user{i}@example.com", password_hash=None) for i in range(10)]

    results = await asyncio.gather(
        *(backend.users.create_with_identity(u, "google", "1077") for u in users), return_exceptions=True
    )

    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, IdentityTaken) for r in results if r is not None)
    [winner] = [u for u, r in zip(users, results, strict=True) if r is None]
    assert await backend.users.get_by_identity("google", "1077") == winner


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
