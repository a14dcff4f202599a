"""GET /api/v1/auth/providers: the sign-in providers the server offers, from its settings."""

from __future__ import annotations

import pytest

from tests.conftest import AppFactory
from tests.support import API, AppClient

GITHUB = {"github_client_id": "gh-id", "github_client_secret": "gh-secret"}
GOOGLE = {"google_client_id": "g-id", "google_client_secret": "g-secret"}


@pytest.mark.parametrize(
    ("configured", "offered"),
    [({}, []), (GITHUB, ["github"]), (GOOGLE, ["google"]), ({**GOOGLE, **GITHUB}, ["github", "google"])],
)
async def test_the_configured_providers_are_listed_to_anyone(
    app_factory: AppFactory, configured: dict[str, str], offered: list[str]
) -> None:
    async with AppClient(app_factory(**configured)) as client:
        response = await client.get(f"{API}/auth/providers")

    assert response.status_code == 200
    assert response.json() == {"providers": offered}
    assert "gh-secret" not in response.text
    assert "g-secret" not in response.text
