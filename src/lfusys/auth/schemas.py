"""Request and response bodies of the auth API."""

from __future__ import annotations

from typing import Annotated

import msgspec

from lfusys.auth.records import User

Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128)]


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    password: Password


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    email: Annotated[str, msgspec.Meta(max_length=254)]
    # Only the upper bound: a short password simply fails to match.
    password: Annotated[str, msgspec.Meta(max_length=128)]


class SetPasswordRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    password: Password
    current_password: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    """Required when the account already has a password; absent for an account that so far signs in
    only through a provider."""


class UserOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    email: str
    name: str
    providers: list[str]
    """How the user can sign in: ``password`` (if set), then each linked provider."""

    @classmethod
    def of(cls, user: User, linked: list[str] | None = None) -> UserOut:
        providers = [*user.providers, *(linked or [])]
        return cls(id=user.id, email=user.email, name=user.name, providers=providers)


class ProviderList(msgspec.Struct, frozen=True, kw_only=True):
    providers: list[str]
