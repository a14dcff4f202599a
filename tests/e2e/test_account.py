"""The account page's API tokens in the browser: a token is made, shown once, works for a script, and
revoking it in the page refuses it at once."""

from __future__ import annotations

import re

from playwright.async_api import BrowserContext, Page, expect

from tests.e2e.conftest import api_sign_up


async def test_a_token_made_in_the_page_works_once_copied_and_stops_when_revoked(
    page: Page, context: BrowserContext
) -> None:
    await api_sign_up(context, "scripts@example.com")
    await page.goto("/account")

    await page.get_by_test_id("token-name").fill("backup script")
    await page.get_by_test_id("token-scope-delete").check()
    await page.get_by_test_id("token-create").click()
    secret = await page.get_by_test_id("token-secret").input_value()
    await expect(page.get_by_test_id("token-row")).to_have_count(1)
    await expect(page.get_by_test_id("token-row-scopes")).to_have_text(re.compile("Upload.*Read.*Delete"))
    await page.get_by_test_id("token-done").click()

    assert secret.startswith("lfusys_")
    await expect(page.get_by_test_id("token-secret")).to_have_count(0)
    assert secret not in await page.content()
    headers = {"authorization": f"Bearer {secret}"}
    script = await context.request.get("/api/v1/files", headers=headers)
    assert script.status == 200

    await page.get_by_test_id("token-revoke").click()
    await page.get_by_role("dialog").get_by_role("button", name=re.compile("Revoke")).click()
    await expect(page.get_by_test_id("token-row")).to_have_count(0)
    refused = await context.request.get("/api/v1/files", headers=headers)
    assert refused.status == 401
