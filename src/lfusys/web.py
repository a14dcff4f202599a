"""The browser app: built assets from ``web/dist`` served by the same process.

Hashed files under ``/assets`` are cached for a year; every other GET that is not an API route gets
``index.html`` (uncached), so client-side routes such as ``/files`` survive a reload.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from pathlib import Path

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import FromPath
from litestar.response import File
from litestar.static_files import create_static_files_router

from lfusys.errors import NotFound

_NOT_APP_PATHS = ("api/", "health/", "schema")
_YEAR = 365 * 24 * 3600
_PUBLIC = {"exclude_from_auth": True}


SWAGGER_UI = "vendor/swagger-ui"
"""Where the web build keeps Swagger UI's files (copied from npm's swagger-ui-dist)."""


def default_web_dir() -> Path:
    """``web/dist`` of a source checkout (where ``npm run build`` puts it)."""
    return Path(__file__).resolve().parents[2] / "web" / "dist"


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def content_security_policy(index_html: str) -> str:
    """The policy for the app's pages: only its own scripts, plus the inline ones the build ships
    (allowed by hash, so a change to them cannot slip through unnoticed)."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(index_html)
    )
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {hashes}".strip(),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",  # the favicon is a data URL; image previews are blob URLs
            "worker-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def web_routes(dist: Path) -> list[Router | HTTPRouteHandler]:
    dist = dist.resolve()
    assets = create_static_files_router(
        path="/assets",
        directories=[dist / "assets"],
        cache_control=CacheControlHeader(max_age=_YEAR, public=True),
        opt=_PUBLIC,
        include_in_schema=False,
    )

    index_html = (dist / "index.html").read_bytes()
    index_headers = {
        "cache-control": "no-cache",
        "content-security-policy": content_security_policy(index_html.decode("utf-8")),
    }

    def page(path: str) -> Response[bytes] | File:
        """A file from the build (e.g. favicon), or the app's ``index.html`` for a client-side route."""
        relative = path.lstrip("/")
        if relative.startswith(_NOT_APP_PATHS):
            raise NotFound("not found")
        if relative:
            candidate = (dist / relative).resolve()
            if candidate.is_relative_to(dist) and candidate.is_file():
                media_type = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
                return File(candidate, media_type=media_type, content_disposition_type="inline")
            if "." in relative.rsplit("/", 1)[-1]:
                raise NotFound("not found")  # a missing file, not a page
        return Response(index_html, media_type="text/html", headers=index_headers)

    @get("/", include_in_schema=False, opt=_PUBLIC, sync_to_thread=False)
    def home() -> Response[bytes] | File:
        return page("/")

    @get("/{path:path}", include_in_schema=False, opt=_PUBLIC, sync_to_thread=False)
    def app_page(path: FromPath[str]) -> Response[bytes] | File:
        return page(path)

    return [assets, home, app_page]


def api_docs_plugin(dist: Path | None) -> SwaggerRenderPlugin:
    """Swagger UI for ``/api/docs``: from the web build when it has it, so the docs work offline;
    from the CDN otherwise."""
    if dist is None or not (dist / SWAGGER_UI / "swagger-ui-bundle.js").is_file():
        return SwaggerRenderPlugin(path="/")
    return SwaggerRenderPlugin(
        path="/",
        js_url=f"/{SWAGGER_UI}/swagger-ui-bundle.js",
        css_url=f"/{SWAGGER_UI}/swagger-ui.css",
        standalone_preset_js_url=f"/{SWAGGER_UI}/swagger-ui-standalone-preset.js",
        favicon="",  # Litestar's default icon comes from a CDN
    )
