"""Signing in the account a provider vouches for: found by its identity, linked by a verified email, or
created — on every backend, with concurrent first sign-ins making one account."""

from __future__ import annotations

import asyncio

import pytest

from lfusys.auth.oauth import IdentityRefused, ProviderIdentity
from lfusys.services import Services
from tests.support import API, AppClient, login, register, services_of

OCTO = ProviderIdentity(provider="github", subject="12345", email="Octo@Example.com", email_verified=True, name="Octo")


@pytest.fixture
def services(client: AppClient) -> Services:
    return services_of(client)


async def test_a_first_sign_in_creates_an_account_and_the_next_finds_it(services: Services) -> None:
    first = await services.auth.sign_in_with_identity(OCTO)
    second = await services.auth.sign_in_with_identity(OCTO)

    assert first.user.id == second.user.id
    assert (first.user.email, first.user.name, first.user.password_hash) == ("octo@example.com", "Octo", None)
    assert await services.backend.users.identities(first.user.id) == ["github"]
    assert first.access_token != second.access_token  # two sign-ins, two sessions


async def test_a_verified_email_links_the_provider_to_the_existing_account(
    client: AppClient, services: Services
) -> None:
    assert (await register(client, "octo@example.com")).status_code == 201
    existing = await services.backend.users.get_by_email("octo@example.com")
    assert existing is not None

    signed_in = await services.auth.sign_in_with_identity(OCTO)
    google = ProviderIdentity(provider="google", subject="g-1", email="octo@example.com", email_verified=True)
    again = await services.auth.sign_in_with_identity(google)

    assert signed_in.user.id == again.user.id == existing.id
    assert await services.backend.users.identities(existing.id) == ["github", "google"]
    assert (await login(client, "octo@example.com")).status_code == 200  # the password still works
    assert (await client.get(f"{API}/auth/me")).json()["providers"] == ["password", "github", "google"]


@pytest.mark.parametrize("registered", [False, True])
async def test_an_unverified_email_signs_nobody_in_and_links_nothing(
    client: AppClient, services: Services, registered: bool
) -> None:
    if registered:
        assert (await register(client, "octo@example.com")).status_code == 201
    unverified = ProviderIdentity(provider="github", subject="666", email="octo@example.com", email_verified=False)

    with pytest.raises(IdentityRefused, match="did not confirm your email"):
        await services.auth.sign_in_with_identity(unverified)

    assert await services.backend.users.get_by_identity("github", "666") is None
    assert (await services.backend.users.get_by_email("octo@example.com") is not None) is registered


async def test_concurrent_first_sign_ins_make_one_account(services: Services) -> None:
    results = await asyncio.gather(*(services.auth.sign_in_with_identity(OCTO) for _ in range(5)))

    assert len({result.user.id for result in results}) == 1
    assert await services.backend.users.identities(results[0].user.id) == ["github"]
