"""The web app in headless Chromium against a real server: the paths a user takes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import BrowserContext, Page, Request, Response, Route, expect

from tests.e2e.conftest import PASSWORD, api_sign_up, csrf_header

MiB = 1024 * 1024
UPLOAD_ROW = '[data-testid^="upload-"][data-state]'


def random_file(directory: Path, name: str, size: int) -> Path:
    path = directory / name
    with path.open("wb") as out:
        for start in range(0, size, 4 * MiB):
            out.write(os.urandom(min(4 * MiB, size - start)))
    return path


def sha256_of(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def chunk_puts(page: Page) -> list[str]:
    """URLs of every chunk PUT the page sends from now on."""
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.method == "PUT" and "/chunks/" in request.url:
            sent.append(request.url)

    page.on("request", record)
    return sent


async def test_register_upload_download_delete_and_sign_out(page: Page, tmp_path: Path) -> None:
    original = random_file(tmp_path, "holiday-video.mp4", 20 * MiB)

    await page.goto("/")
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await page.get_by_role("link", name=re.compile("sign in|get started", re.IGNORECASE)).first.click()
    await expect(page).to_have_url(re.compile(r"/signin"))
    await page.get_by_role("button", name="Register").click()
    await page.get_by_label("Name").fill("Ada Lovelace")
    await page.get_by_label("Email").fill("ada@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page).to_have_url(re.compile(r"/upload"))  # registering signs in
    await sign_out(page)

    await page.goto("/signin")
    await page.get_by_label("Email").fill("ADA@example.com")
    await page.get_by_label("Password").fill("wrong password")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_test_id("form-error")).to_be_visible()
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/upload"))
    await expect(page.get_by_test_id("user-menu-button")).to_contain_text("Ada Lovelace")

    await page.get_by_test_id("file-input").set_input_files(str(original))
    row = page.locator(UPLOAD_ROW)
    await expect(row).to_have_attribute("data-state", "completed", timeout=60_000)
    await expect(row).to_contain_text("holiday-video.mp4")

    await page.get_by_role("link", name="Files", exact=True).first.click()
    file_row = page.get_by_test_id("file-row")
    await expect(file_row).to_have_count(1)
    await expect(file_row).to_contain_text("holiday-video.mp4")
    async with page.expect_download() as download_info:
        await file_row.get_by_role("button", name=re.compile("Download")).click()
    download = await download_info.value
    assert download.suggested_filename == "holiday-video.mp4"
    downloaded = tmp_path / "downloaded.bin"
    await download.save_as(downloaded)
    assert sha256_of(downloaded) == sha256_of(original)

    await file_row.get_by_role("button", name=re.compile("Delete")).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name=re.compile("^Delete")).click()
    await expect(page.get_by_test_id("files-empty")).to_be_visible()
    await expect(page.get_by_test_id("file-row")).to_have_count(0)

    await sign_out(page)
    await page.goto("/files")
    await expect(page).to_have_url(re.compile(r"/signin"))


@pytest.mark.server_env(LFUSYS_BACKEND="aws")
async def test_on_the_aws_backend_the_web_app_uploads_and_downloads_from_s3(
    page: Page, context: BrowserContext, tmp_path: Path
) -> None:
    await api_sign_up(context, "cloud@example.com")
    original = random_file(tmp_path, "survey data.csv", 20 * MiB)  # three chunks: a multipart assembly
    await page.goto("/upload")
    await page.get_by_test_id("file-input").set_input_files(str(original))
    await expect(page.locator(UPLOAD_ROW)).to_have_attribute("data-state", "completed", timeout=60_000)

    await page.get_by_role("link", name="Files", exact=True).first.click()
    file_row = page.get_by_test_id("file-row")
    async with page.expect_download() as download_info:
        await file_row.get_by_role("button", name=re.compile("Download")).click()
    download = await download_info.value
    downloaded = tmp_path / "downloaded.bin"
    await download.save_as(downloaded)

    assert download.suggested_filename == "survey data.csv"
    assert sha256_of(downloaded) == sha256_of(original)
    # The bytes came from S3 through the presigned link, not through the app.
    assert "X-Amz-Signature=" in download.url
    assert urlsplit(download.url).netloc != urlsplit(page.url).netloc


async def sign_out(page: Page) -> None:
    await page.get_by_test_id("user-menu-button").click()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_test_id("user-menu-button")).to_have_count(0)


async def test_an_upload_waits_while_offline_and_finishes_when_back_online(
    page: Page, context: BrowserContext, tmp_path: Path
) -> None:
    await api_sign_up(context, "offline@example.com")
    original = random_file(tmp_path, "field-notes.zip", 20 * MiB)
    await page.goto("/upload")
    await expect(page.get_by_test_id("drop-zone")).to_be_visible()

    await context.set_offline(True)
    await page.get_by_test_id("file-input").set_input_files(str(original))
    row = page.locator(UPLOAD_ROW)
    await expect(row).to_be_visible()
    await asyncio.sleep(2)  # long enough for several retries, had any been attempted
    assert await row.get_attribute("data-state") not in {"failed", "completed", "cancelled"}

    await context.set_offline(False)
    await expect(row).to_have_attribute("data-state", "completed", timeout=60_000)
    files = await (await context.request.get("/api/v1/files")).json()
    assert [(f["name"], f["size"]) for f in files["files"]] == [("field-notes.zip", 20 * MiB)]


async def test_an_upload_interrupted_by_a_reload_resumes_after_picking_the_file_again(
    page: Page, context: BrowserContext, tmp_path: Path
) -> None:
    await api_sign_up(context, "resume@example.com")
    original = random_file(tmp_path, "dataset.tar", 40 * MiB)  # five 8 MiB chunks
    upload_id = await _upload_two_chunks_then_reload(page, context, original)
    session = page.get_by_test_id(f"resume-{upload_id}")
    await expect(session).to_be_visible()
    await expect(session).to_contain_text("dataset.tar")
    sent = chunk_puts(page)
    await page.get_by_test_id(f"resume-input-{upload_id}").set_input_files(str(original))

    await expect(page.locator(UPLOAD_ROW)).to_have_attribute("data-state", "completed", timeout=60_000)
    assert sorted(int(url.rsplit("/", 1)[1]) for url in sent) == [3, 4, 5]
    status = await (await context.request.get(f"/api/v1/uploads/{upload_id}")).json()
    assert status["status"] == "completed"
    link = await (await context.request.get(f"/api/v1/files/{status['file_id']}/download")).json()
    body = await (await context.request.get(link["url"])).body()
    assert hashlib.sha256(body).digest() == sha256_of(original)


async def _upload_two_chunks_then_reload(page: Page, context: BrowserContext, original: Path) -> str:
    """Start uploading ``original`` but let only chunks 1 and 2 reach the server, then reload the page."""
    held: list[Route] = []

    async def let_two_chunks_through(route: Route) -> None:
        # Chunks 1 and 2 reach the server; the rest hang until the page goes away.
        if re.search(r"/chunks/[12]$", route.request.url):
            await route.continue_()
        else:
            held.append(route)

    await page.route("**/api/v1/uploads/*/chunks/*", let_two_chunks_through)
    await page.goto("/upload")
    await page.get_by_test_id("file-input").set_input_files(str(original))
    upload_id = await _wait_for_stored_chunks(context, 2)

    await page.reload()  # the held chunk requests die with the page
    await page.unroute("**/api/v1/uploads/*/chunks/*")
    assert (await (await context.request.get(f"/api/v1/uploads/{upload_id}/chunks")).json())["chunks"] == [1, 2]
    return upload_id


async def _wait_for_stored_chunks(context: BrowserContext, count: int) -> str:
    for _ in range(400):
        uploads = (await (await context.request.get("/api/v1/uploads")).json())["uploads"]
        if uploads and uploads[0]["uploaded_chunks"] >= count:
            upload_id: str = uploads[0]["upload_id"]
            return upload_id
        await asyncio.sleep(0.025)
    raise AssertionError(f"the server never stored {count} chunks")


@pytest.mark.parametrize("wrong", ["same name and size, other bytes", "other name", "other size"])
async def test_a_wrong_file_picked_for_resume_is_refused_before_anything_is_sent(
    page: Page, context: BrowserContext, tmp_path: Path, wrong: str
) -> None:
    await api_sign_up(context, "careful@example.com")
    original = random_file(tmp_path, "report.pdf", 12 * MiB)
    headers = await csrf_header(context)
    created = await (
        await context.request.post(
            "/api/v1/uploads",
            data=json.dumps({"file_name": "report.pdf", "file_type": "application/pdf", "file_size": 12 * MiB}),
            headers={**headers, "content-type": "application/json"},
        )
    ).json()
    first = original.read_bytes()[: created["chunk_size"]]
    stored = await context.request.put(
        f"/api/v1/uploads/{created['upload_id']}/chunks/1",
        data=first,
        headers={**headers, "x-chunk-hash": hashlib.sha256(first).hexdigest()},
    )
    assert stored.status == 200
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    name, size = {
        "same name and size, other bytes": ("report.pdf", 12 * MiB),
        "other name": ("report-final.pdf", 12 * MiB),
        "other size": ("report.pdf", 12 * MiB + 1),
    }[wrong]
    impostor = random_file(other_dir, name, size)

    await page.goto("/upload")
    sent = chunk_puts(page)
    await page.get_by_test_id(f"resume-input-{created['upload_id']}").set_input_files(str(impostor))

    error = page.get_by_test_id(f"resume-{created['upload_id']}").get_by_test_id("pick-error")
    await expect(error).to_be_visible()
    await expect(error).not_to_be_empty()
    await asyncio.sleep(0.3)
    assert sent == []
    chunks = await (await context.request.get(f"/api/v1/uploads/{created['upload_id']}/chunks")).json()
    assert chunks["chunks"] == [1]


async def test_a_file_changed_after_its_first_chunk_is_refused_when_resuming(
    page: Page, context: BrowserContext, tmp_path: Path
) -> None:
    await api_sign_up(context, "changed@example.com")
    original = random_file(tmp_path, "dataset.tar", 40 * MiB)  # five 8 MiB chunks
    upload_id = await _upload_two_chunks_then_reload(page, context, original)
    chunk_size = (await (await context.request.get(f"/api/v1/uploads/{upload_id}")).json())["chunk_size"]
    # Same name and size, and chunk 1 is unchanged: only chunk 2, a later stored chunk, differs.
    edited = bytearray(original.read_bytes())
    edited[chunk_size + 1000] ^= 0xFF
    other_dir = tmp_path / "edited"
    other_dir.mkdir()
    changed = other_dir / "dataset.tar"
    changed.write_bytes(bytes(edited))

    session = page.get_by_test_id(f"resume-{upload_id}")
    await expect(session).to_be_visible()
    sent = chunk_puts(page)
    await page.get_by_test_id(f"resume-input-{upload_id}").set_input_files(str(changed))

    error = session.get_by_test_id("pick-error")
    await expect(error).to_contain_text("changed")
    await expect(error).to_contain_text("differs from what was already uploaded")
    await expect(page.locator(UPLOAD_ROW)).to_have_count(0)
    await asyncio.sleep(0.5)
    assert sent == []
    assert (await (await context.request.get(f"/api/v1/uploads/{upload_id}/chunks")).json())["chunks"] == [1, 2]
    status = await (await context.request.get(f"/api/v1/uploads/{upload_id}")).json()
    assert status["status"] == "in_progress"
    assert status["file_id"] is None


async def test_sign_in_and_the_user_menu_work_with_the_keyboard_alone(page: Page, context: BrowserContext) -> None:
    await api_sign_up(context, "keys@example.com", name="Kay Board")
    await context.clear_cookies()
    await page.goto("/signin")

    await page.get_by_label("Email").focus()
    await page.keyboard.type("keys@example.com")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/upload"))

    menu_button = page.get_by_test_id("user-menu-button")
    await menu_button.focus()
    await page.keyboard.press("Enter")
    await expect(menu_button).to_have_attribute("aria-expanded", "true")
    await page.keyboard.press("Escape")
    await expect(menu_button).to_have_attribute("aria-expanded", "false")
    await expect(menu_button).to_be_focused()
    choose = page.get_by_role("button", name="Choose files")
    await choose.focus()
    await expect(choose).to_be_focused()


async def test_the_interactive_api_docs_render_without_the_internet(page: Page) -> None:
    await page.goto("/api/docs")

    await expect(page.locator(".swagger-ui").get_by_text("/api/v1/uploads/{upload_id}/chunks/{n}")).to_be_visible()
    await expect(page.locator(".swagger-ui").get_by_text("/api/v1/auth/login")).to_be_visible()


async def test_many_unfinished_uploads_are_shown_a_page_at_a_time(page: Page, context: BrowserContext) -> None:
    await api_sign_up(context, "busy@example.com")
    headers = {**await csrf_header(context), "content-type": "application/json"}
    for i in range(25):
        body = {"file_name": f"part-{i:02d}.bin", "file_type": "", "file_size": 1000}
        assert (await context.request.post("/api/v1/uploads", data=json.dumps(body), headers=headers)).status == 201
    rows = page.get_by_test_id("unfinished-section").locator('li[data-testid^="resume-"]')
    more = page.get_by_test_id("unfinished-more")

    await page.goto("/upload")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_contain_text("part-24.bin")  # newest first
    await more.click()

    await expect(rows).to_have_count(25)
    await expect(rows.last).to_contain_text("part-00.bin")
    await expect(more).to_have_count(0)  # that was the last page
    await page.get_by_role("button", name="Refresh").click()  # a refresh keeps every row shown
    await expect(rows).to_have_count(25)


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(429, marks=pytest.mark.server_env(LFUSYS_MAX_CHUNK_PUTS_PER_USER="1"), id="the user's cap"),
        # Two places: one for a user already sending, the other kept for users with nothing in flight.
        pytest.param(503, marks=pytest.mark.server_env(LFUSYS_MAX_CHUNK_PUTS="2"), id="the server's limit"),
    ],
)
async def test_a_busy_server_is_waited_out_and_the_upload_completes(
    page: Page, context: BrowserContext, tmp_path: Path, status: int
) -> None:
    await api_sign_up(context, "patient@example.com")
    original = random_file(tmp_path, "archive.zip", 40 * MiB)  # five 8 MiB chunks, sent four at a time
    refused: list[tuple[int, str | None]] = []

    async def note_refusals(response: Response) -> None:
        if response.status in (429, 503):
            refused.append((response.status, await response.header_value("retry-after")))

    page.on("response", note_refusals)
    await page.goto("/upload")
    await page.get_by_test_id("file-input").set_input_files(str(original))

    row = page.locator(UPLOAD_ROW)
    await expect(row).to_have_attribute("data-state", "completed", timeout=60_000)
    assert refused, "the server never turned a chunk away"
    assert set(refused) == {(status, "1")}
    files = (await (await context.request.get("/api/v1/files")).json())["files"]
    assert [(f["name"], f["size"]) for f in files] == [("archive.zip", 40 * MiB)]
    link = await (await context.request.get(f"/api/v1/files/{files[0]['id']}/download")).json()
    downloaded = await context.request.get(link["url"])
    assert hashlib.sha256(await downloaded.body()).digest() == sha256_of(original)
