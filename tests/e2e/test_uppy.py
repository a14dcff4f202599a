"""Uppy (@uppy/core with @uppy/tus, as a site embeds it) in Chromium, uploading a 20 MiB file through
LFUSYS's tus endpoint with the signed-in browser's cookies, in PATCHes and again in POSTs that say
``X-HTTP-Method-Override: PATCH``: the file then shows in the web app's files list, and the files API
hands back the bytes that were sent."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import BrowserContext, Page, Request, Route, expect

from tests.e2e.conftest import api_sign_up
from tests.support import LiveServer

MiB = 1024 * 1024
TEST_CLIENTS = Path(__file__).resolve().parents[1] / "js"
PAGE_PATH = "/uppy-test/"
SCRIPT_PATH = "/uppy-test/uppy.js"
PAGE = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Uppy</title><script src="{SCRIPT_PATH}"></script></head>
<body><input type="file" id="file"></body>
</html>
"""


@pytest.fixture(scope="module")
def uppy_script() -> str:
    """tests/js/uppy-page.mjs bundled for the browser: Uppy, its Tus plugin and tus-js-client in one script."""
    esbuild = TEST_CLIENTS / "node_modules" / ".bin" / "esbuild"
    assert esbuild.exists(), "scripts/bootstrap --test installs tests/js/node_modules"
    bundled = subprocess.run(
        [str(esbuild), "uppy-page.mjs", "--bundle", "--format=iife", "--log-level=warning"],
        cwd=TEST_CLIENTS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bundled.returncode == 0, bundled.stderr
    return bundled.stdout


async def open_uppy_page(page: Page, script: str) -> None:
    """Open a page with Uppy on the server's own origin (served by the test, never reaching the server),
    so that the session's cookies go with Uppy's requests as with the web app's."""
    served = {PAGE_PATH: ("text/html", PAGE), SCRIPT_PATH: ("text/javascript", script)}

    async def serve(route: Route) -> None:
        content_type, body = served[urlsplit(route.request.url).path]
        await route.fulfill(status=200, content_type=content_type, body=body)

    await page.route(lambda url: urlsplit(url).path in served, serve)
    await page.goto(PAGE_PATH)


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


async def wait_until_completed(context: BrowserContext, upload_id: str, within: float = 30) -> dict[str, Any]:
    """The upload's state once the server has made its file (that happens after the last PATCH)."""
    deadline = time.monotonic() + within
    while True:
        state: dict[str, Any] = await (await context.request.get(f"/api/v1/uploads/{upload_id}")).json()
        if state["status"] == "completed":
            return state
        assert state["status"] in ("pending", "in_progress", "finalizing"), state
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.1)


def methods_to_uploads(page: Page) -> list[str]:
    """The method of every request the page sends from now on to an upload's tus URL."""
    sent: list[str] = []

    def record(request: Request) -> None:
        if re.search(r"/api/v1/tus/\w+$", request.url):
            sent.append(request.method)

    page.on("request", record)
    return sent


@pytest.mark.parametrize(
    ("override", "method"), [(False, "PATCH"), (True, "POST")], ids=["patch", "post-with-method-override"]
)
async def test_uppy_uploads_a_file_through_tus_that_the_web_app_lists(
    page: Page,
    context: BrowserContext,
    server: LiveServer,
    tmp_path: Path,
    uppy_script: str,
    override: bool,
    method: str,
) -> None:
    await api_sign_up(context, "uppy@example.com")
    original = random_file(tmp_path / "drone footage.mov", 20 * MiB)
    await open_uppy_page(page, uppy_script)
    await page.locator("#file").set_input_files(original)
    sent = methods_to_uploads(page)

    # 8 MiB PATCHes: the upload takes three, each carrying on from the offset the last one reached. With
    # overridePatchMethod each is a POST saying X-HTTP-Method-Override: PATCH.
    outcome = await page.evaluate(
        """(override) => window.uploadWithUppy(document.querySelector('#file').files[0], {
            chunkSize: 8 * 1024 * 1024,
            overridePatchMethod: override,
        })""",
        override,
    )

    assert outcome["failed"] == []
    assert sent == [method] * 3
    assert len(outcome["successful"]) == 1, outcome
    uploaded = outcome["successful"][0]
    assert (uploaded["name"], uploaded["size"]) == ("drone footage.mov", 20 * MiB)
    assert re.fullmatch(rf"{re.escape(server.url)}/api/v1/tus/\w+", uploaded["uploadURL"]), uploaded
    state = await wait_until_completed(context, uploaded["uploadURL"].rsplit("/", 1)[1])

    await page.goto("/files")
    file_row = page.get_by_test_id("file-row")
    await expect(file_row).to_have_count(1)
    await expect(file_row.get_by_test_id("file-name")).to_have_text("drone footage.mov")
    await expect(file_row).to_contain_text("21.0 MB")  # 20 MiB, in the list's SI units

    info = await (await context.request.get(f"/api/v1/files/{state['file_id']}")).json()
    assert (info["name"], info["type"], info["size"]) == ("drone footage.mov", "video/quicktime", 20 * MiB)
    link = await (await context.request.get(f"/api/v1/files/{state['file_id']}/download")).json()
    downloaded = await (await context.request.get(link["url"])).body()
    assert hashlib.sha256(downloaded).digest() == hashlib.sha256(original.read_bytes()).digest()
