"""Browser tests: Debian's Chromium, driven by Playwright, against a real ``lfusys serve`` with the built app.

Screenshots go to ``test-artifacts/screenshots/`` (kept after the run, ignored by git).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.chromium import CHROMIUM, CHROMIUM_ARGS
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from lfusys.web import default_web_dir
from tests.support import LiveServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def web_dist() -> Path:
    dist = default_web_dir()
    if not (dist / "index.html").is_file():
        pytest.fail("the web app is not built: run ./scripts/bootstrap (or `npm run build` in web/)")
    return dist


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A browser per test, on the test's own event loop (async API: no loop outlives the test)."""
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "server_env(**variables): extra LFUSYS_* settings for the test's server")


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path, web_dist: Path) -> Iterator[LiveServer]:
    marker = request.node.get_closest_marker("server_env")
    variables = dict(marker.kwargs) if marker else {}
    backend = variables.pop("LFUSYS_BACKEND", "local")
    live = LiveServer(
        tmp_path / "data", tmp_path / "server.log", backend=backend, LFUSYS_WEB_DIR=str(web_dist), **variables
    )
    yield live
    live.stop()


@pytest.fixture
async def context(browser: Browser, server: LiveServer) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(
        base_url=server.url, accept_downloads=True, viewport={"width": 1280, "height": 800}
    )
    yield context
    await context.close()


def watch_for_errors(page: Page) -> list[str]:
    """Uncaught errors and Content-Security-Policy refusals in the page, collected from now on."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return errors


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    page = await context.new_page()
    errors = watch_for_errors(page)
    yield page
    assert errors == [], f"errors in the page: {errors}"


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact.

    Animations and transitions are finished first, so a progress bar is never caught half-way to
    the value printed beside it.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


async def api_sign_up(context: BrowserContext, email: str, name: str = "Ada") -> dict[str, Any]:
    """Register and sign in through the API with the context's cookie jar (faster than the form)."""
    await context.request.get("/api/v1/auth/me")
    headers = {**await csrf_header(context), "content-type": "application/json"}
    body = {"name": name, "email": email, "password": PASSWORD}
    assert (await context.request.post("/api/v1/auth/register", data=json.dumps(body), headers=headers)).status == 201
    login = {"email": email, "password": PASSWORD}
    response = await context.request.post("/api/v1/auth/login", data=json.dumps(login), headers=headers)
    assert response.status == 200
    user: dict[str, Any] = await response.json()
    return user


async def csrf_header(context: BrowserContext) -> dict[str, str]:
    return {"x-csrf-token": next(c["value"] for c in await context.cookies() if c["name"] == "lfusys_csrf")}
