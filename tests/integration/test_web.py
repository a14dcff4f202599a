"""The built web app is served by the same process, with client-side routes falling back to index.html."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from tests.conftest import AppFactory
from tests.support import API, BASE_URL, AppClient

INDEX = "<!doctype html><title>LFUSYS</title><div id=root></div>"


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    """A stand-in for ``npm run build`` output."""
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "app-1a2b3c.js").write_text("console.log('app')")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return dist


@pytest.mark.parametrize("path", ["/", "/upload", "/files", "/signin", "/no/such/page"])
async def test_pages_get_the_app(app_factory: AppFactory, web_dir: Path, path: str) -> None:
    async with AppClient(app_factory(web_dir=web_dir), base_url=BASE_URL) as client:
        response = await client.get(path)

    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-request-id"]


async def test_hashed_assets_are_cached_for_long(app_factory: AppFactory, web_dir: Path) -> None:
    async with AppClient(app_factory(web_dir=web_dir), base_url=BASE_URL) as client:
        asset = await client.get("/assets/app-1a2b3c.js")
        favicon = await client.get("/favicon.svg")

    assert asset.status_code == 200
    assert asset.text == "console.log('app')"
    assert "max-age=31536000" in asset.headers["cache-control"]
    assert favicon.text == "<svg/>"
    # With nosniff, a browser only runs or shows a file whose type is declared right.
    assert favicon.headers["content-type"] == "image/svg+xml"
    assert not favicon.headers.get("content-disposition", "inline").startswith("attachment")


@pytest.mark.parametrize(
    "path", ["/assets/missing.js", "/missing.png", f"{API}/no-such-endpoint", "/health/nothing", "/../secret.txt"]
)
async def test_missing_files_and_unknown_api_routes_stay_404(app_factory: AppFactory, web_dir: Path, path: str) -> None:
    async with AppClient(app_factory(web_dir=web_dir), base_url=BASE_URL) as client:
        response = await client.get(path)

    assert response.status_code == 404
    assert "outside the build" not in response.text
    assert INDEX not in response.text


async def test_api_routes_win_over_the_app(app_factory: AppFactory, web_dir: Path) -> None:
    async with AppClient(app_factory(web_dir=web_dir), base_url=BASE_URL) as client:
        providers = await client.get(f"{API}/auth/providers")
        health = await client.get("/health/live")
        docs = await client.get("/api/docs")

    assert providers.json() == {"providers": []}
    assert health.json() == {"status": "ok"}
    assert docs.status_code == 200
    assert INDEX not in docs.text


async def test_without_a_build_only_the_api_is_served(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(), base_url=BASE_URL) as client:
        page = await client.get("/upload")
        providers = await client.get(f"{API}/auth/providers")

    assert page.status_code == 404
    assert providers.status_code == 200


async def test_pages_carry_a_content_security_policy_that_allows_only_the_builds_inline_script(
    app_factory: AppFactory, web_dir: Path
) -> None:
    theme = "document.documentElement.classList.add('dark')"
    (web_dir / "index.html").write_text(f"<!doctype html><script>{theme}</script><script src=/assets/a.js></script>")
    async with AppClient(app_factory(web_dir=web_dir), base_url=BASE_URL) as client:
        policy = (await client.get("/files")).headers["content-security-policy"]

    digest = base64.b64encode(hashlib.sha256(theme.encode()).digest()).decode()
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == f"'self' 'sha256-{digest}'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"


async def test_the_api_docs_use_swagger_ui_from_the_build_when_it_has_it(
    app_factory: AppFactory, web_dir: Path
) -> None:
    swagger = web_dir / "vendor" / "swagger-ui"
    swagger.mkdir(parents=True)
    for name in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        (swagger / name).write_text(f"/* {name} */")
    async with AppClient(app_factory(web_dir=web_dir), base_url=BASE_URL) as client:
        docs = await client.get("/api/docs")
        bundle = await client.get("/vendor/swagger-ui/swagger-ui-bundle.js")

    assert docs.status_code == 200
    assert 'src="/vendor/swagger-ui/swagger-ui-bundle.js"' in docs.text
    assert "cdn." not in docs.text
    assert bundle.text == "/* swagger-ui-bundle.js */"
    assert bundle.headers["content-type"].startswith(("text/javascript", "application/javascript"))


async def test_without_the_build_the_api_docs_fall_back_to_the_cdn(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(), base_url=BASE_URL) as client:
        docs = await client.get("/api/docs")

    assert docs.status_code == 200
    assert "swagger-ui-bundle.js" in docs.text
