"""Every page in light and dark, at desktop and phone width: it renders, and a screenshot is kept.

Screenshots land in test-artifacts/screenshots/<page>-<theme>[-phone].png.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path
from typing import Literal

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.e2e.conftest import api_sign_up, screenshot, watch_for_errors
from tests.support import LiveServer

Theme = Literal["light", "dark"]
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(params=["light", "dark"])
def theme(request: pytest.FixtureRequest) -> Theme:
    value: Theme = request.param
    return value


async def themed_page(
    browser: Browser, server: LiveServer, theme: Theme, phone: bool = False
) -> tuple[BrowserContext, Page, list[str]]:
    context = await browser.new_context(base_url=server.url, color_scheme=theme, viewport=PHONE if phone else DESKTOP)
    page = await context.new_page()
    return context, page, watch_for_errors(page)


async def expect_theme(page: Page, theme: Theme) -> None:
    """The app follows the system colour scheme by default."""
    html = page.locator("html")
    if theme == "dark":
        await expect(html).to_have_class(re.compile(r"\bdark\b"))
    else:
        await expect(html).not_to_have_class(re.compile(r"\bdark\b"))


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_visitor_pages(browser: Browser, server: LiveServer, theme: Theme, phone: bool) -> None:
    context, page, errors = await themed_page(browser, server, theme, phone)
    suffix = f"{theme}{'-phone' if phone else ''}"
    try:
        await page.goto("/")
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await expect_theme(page, theme)
        await screenshot(page, f"home-{suffix}")

        await page.goto("/signin")
        await expect(page.get_by_label("Email")).to_be_visible()
        await screenshot(page, f"signin-{suffix}")
        await page.get_by_role("button", name="Register").click()
        await expect(page.get_by_label("Name")).to_be_visible()
        await page.get_by_role("button", name="Create account").click()  # empty form: validation messages show
        await screenshot(page, f"register-errors-{suffix}")

        await page.goto("/no/such/page")
        await expect(page.get_by_role("heading", level=1)).to_contain_text(re.compile("not found", re.IGNORECASE))
        await screenshot(page, f"not-found-{suffix}")
    finally:
        await context.close()
    assert errors == [], f"errors in the page: {errors}"


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_signed_in_pages(browser: Browser, server: LiveServer, theme: Theme, phone: bool, tmp_path: Path) -> None:
    context, page, errors = await themed_page(browser, server, theme, phone)
    suffix = f"{theme}{'-phone' if phone else ''}"
    try:
        await api_sign_up(context, f"{theme}-{phone}@example.com", name="Grace Hopper")
        await page.goto("/files")
        await expect(page.get_by_test_id("files-empty")).to_be_visible()
        await screenshot(page, f"files-empty-{suffix}")

        await page.goto("/upload")
        await expect(page.get_by_test_id("drop-zone")).to_be_visible()
        picture = tmp_path / "photo.png"
        picture.write_bytes(_tiny_png())
        document = tmp_path / "notes.txt"
        document.write_bytes(os.urandom(3 * 1024 * 1024))
        await page.get_by_test_id("file-input").set_input_files([str(picture), str(document)])
        rows = page.locator('[data-testid^="upload-"][data-state]')
        await expect(rows).to_have_count(2)
        for index in range(2):
            await expect(rows.nth(index)).to_have_attribute("data-state", "completed", timeout=30_000)
        await expect(page.locator("img")).to_have_count(1)  # the image gets a preview
        await screenshot(page, f"upload-{suffix}")

        await page.get_by_test_id("user-menu-button").click()
        await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        await screenshot(page, f"user-menu-{suffix}")
        await page.keyboard.press("Escape")

        await page.goto("/files")
        await expect(page.get_by_test_id("file-row")).to_have_count(2)
        await screenshot(page, f"files-{suffix}")
        await page.get_by_test_id("file-row").first.get_by_role("button", name=re.compile("Delete")).click()
        await expect(page.get_by_role("dialog")).to_be_visible()
        await screenshot(page, f"delete-dialog-{suffix}")
    finally:
        await context.close()
    assert errors == [], f"errors in the page: {errors}"


def _tiny_png(size: int = 64) -> bytes:
    """A valid PNG: a blue square."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = b"".join(b"\x00" + b"\x3b\x82\xf6" * size for _ in range(size))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
