"""lfusys.auth.records: the account as a request's caller is known."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError

from lfusys.auth.records import HASH_WITHHELD, User


def a_user(password_hash: str | None) -> User:
    return User(id="u1", email="ada@example.com", name="Ada", password_hash=password_hash, created_at=datetime.now(UTC))


def test_without_secrets_keeps_everything_but_the_hash() -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    user = a_user(hasher.hash("correct horse battery"))

    caller = user.without_secrets()

    assert caller.password_hash == HASH_WITHHELD
    assert caller == msgspec.structs.replace(user, password_hash=HASH_WITHHELD)
    assert caller.providers == user.providers == ("password",)
    with pytest.raises(InvalidHashError):  # no password verifies against the stand-in
        hasher.verify(HASH_WITHHELD, "correct horse battery")


def test_an_account_without_a_password_stays_without_one() -> None:
    caller = a_user(None).without_secrets()

    assert caller.password_hash is None
    assert caller.providers == ()
