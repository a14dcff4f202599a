"""Signing in with a provider in the browser: the GitHub button on the sign-in page, a provider that
really runs on 127.0.0.1, and the browser back on the page that asked for a sign-in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.fake_oauth import FakeProvider
from tests.support import LiveServer

CLIENT_ID, CLIENT_SECRET = "test-client", "test-secret"
NEW_PASSWORD = "a password of my own"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(CLIENT_ID, CLIENT_SECRET) as running:
        yield running


@pytest.fixture
def server(tmp_path: Path, web_dist: Path, provider: FakeProvider) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path / "data",
        tmp_path / "server.log",
        LFUSYS_WEB_DIR=str(web_dist),
        LFUSYS_GITHUB_CLIENT_ID=CLIENT_ID,
        LFUSYS_GITHUB_CLIENT_SECRET=CLIENT_SECRET,
        LFUSYS_GITHUB_AUTHORIZE_URL=provider.github_authorize_url,
        LFUSYS_GITHUB_TOKEN_URL=provider.github_token_url,
        LFUSYS_GITHUB_API_URL=provider.github_api_url,
    )
    yield live
    live.stop()


async def test_the_github_button_signs_in_and_comes_back_to_the_page_that_asked(
    page: Page, provider: FakeProvider
) -> None:
    await page.goto("/files")
    await expect(page).to_have_url(re.compile(r"/signin"))

    await page.get_by_role("link", name="Continue with GitHub").click()

    await expect(page).to_have_url(re.compile(r"/files$"))
    await expect(page.get_by_test_id("user-menu-button")).to_have_accessible_name(re.compile("Octo"))
    assert len(provider.token_requests) == 1
    me = await page.request.get("/api/v1/auth/me")
    assert (await me.json())["providers"] == ["github"]


async def test_a_refused_sign_in_comes_back_to_the_sign_in_page_with_plain_words(
    page: Page, provider: FakeProvider
) -> None:
    provider.deny = True
    await page.goto("/signin")

    await page.get_by_role("link", name="Continue with GitHub").click()

    await expect(page).to_have_url(re.compile(r"/signin"))
    await expect(page.get_by_test_id("form-error")).to_have_text("GitHub did not allow the sign-in.")
    assert provider.token_requests == []


async def test_an_account_made_by_github_sets_a_password_and_then_signs_in_with_email(page: Page) -> None:
    await page.goto("/signin")
    await page.get_by_role("link", name="Continue with GitHub").click()
    await expect(page.get_by_test_id("user-menu-button")).to_be_visible()

    await page.get_by_test_id("user-menu-button").click()
    await page.get_by_test_id("user-menu-account").click()
    await expect(page.get_by_test_id("account-providers")).to_have_text("GitHub")
    await expect(page.get_by_role("heading", name="Set a password")).to_be_visible()
    await expect(page.get_by_test_id("current-password")).to_have_count(0)
    await page.get_by_test_id("new-password").fill(NEW_PASSWORD)
    await page.get_by_test_id("repeat-password").fill(NEW_PASSWORD)
    await page.get_by_test_id("password-submit").click()

    await expect(page.get_by_test_id("password-message")).to_contain_text("Password set.")
    await expect(page.get_by_test_id("account-providers")).to_have_text(re.compile("Email and password.*GitHub"))
    await expect(page.get_by_role("heading", name="Change password")).to_be_visible()

    await page.get_by_test_id("user-menu-button").click()
    await page.get_by_role("button", name="Sign out").click()
    await page.goto("/signin")
    await page.get_by_label("Email").fill("octo@example.com")
    await page.get_by_label("Password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_test_id("user-menu-button")).to_have_accessible_name(re.compile("Octo"))
