"""The application factory: ``create_app(settings)`` wires modules, adapters and middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from litestar import Litestar, Router
from litestar.datastructures import MutableScopeHeaders
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.types import BeforeMessageSendHookHandler, Message, Scope

from lfusys import __version__
from lfusys.auth.csrf import HeaderCSRFMiddleware, csrf_config
from lfusys.auth.middleware import CookieAuthenticationMiddleware
from lfusys.auth.routes import AuthController
from lfusys.auth.token_routes import TokensController
from lfusys.chunks.memory import releasing_memory
from lfusys.chunks.routes import ChunksController
from lfusys.clock import Clock, utc_now
from lfusys.errors import EXCEPTION_HANDLERS
from lfusys.files.routes import FileContentController, FilesController
from lfusys.forwarded import ForwardedHeaders, TrustedProxies
from lfusys.http import StrictJSONRequest
from lfusys.observability.health import HealthController
from lfusys.observability.logging import configure_logging
from lfusys.observability.metrics import http_metrics, metrics_endpoint
from lfusys.observability.request_context import LogContextMiddleware, RequestContext
from lfusys.observability.tracing import asgi_tracing, configure_tracing, flush_traces
from lfusys.rate_limits.limits import RATE_LIMIT_OPT, Rule
from lfusys.rate_limits.middleware import RateLimitMiddleware
from lfusys.services import background_work, cookie_policy, open_services
from lfusys.sessions.routes import UploadsController
from lfusys.settings import Settings, load_settings
from lfusys.storage.backend import server_keys
from lfusys.tus.method_override import MethodOverride
from lfusys.tus.routes import TUS_PATH, TusController, tus_options
from lfusys.web import api_docs_plugin, default_web_dir, web_routes

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"


def _security_headers(https: bool) -> BeforeMessageSendHookHandler:
    headers = {
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "strict-origin-when-cross-origin",
    }
    if https:
        headers["strict-transport-security"] = "max-age=63072000; includeSubDomains"

    async def add_security_headers(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            mutable = MutableScopeHeaders.from_message(message)
            for name, value in headers.items():
                mutable.setdefault(name, value)

    return add_security_headers


def _built_web_dir(settings: Settings) -> Path | None:
    directory = settings.core.web_dir or default_web_dir()
    return directory if (directory / "index.html").is_file() else None


def _web_app(settings: Settings) -> list[Router | HTTPRouteHandler]:
    directory = _built_web_dir(settings)
    if directory is None:
        log.warning("web app not built; serving the API only", web_dir=str(settings.core.web_dir or default_web_dir()))
        return []
    return web_routes(directory)


def create_app(settings: Settings | None = None, clock: Clock = utc_now) -> Litestar:
    """Build the application. Nothing is opened until the lifespan starts; ``clock`` is "now" for
    every service (tests move it)."""
    settings = settings or load_settings()
    configure_logging(settings)
    tracing = configure_tracing()
    keys = server_keys(settings)
    cookies = cookie_policy(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services(settings, keys, clock) as services, releasing_memory(services.admission):
            log.info("backend opened", backend=services.backend.description)
            app.state["services"] = services
            try:
                if settings.queue.run_worker:
                    async with background_work(services):
                        yield
                else:
                    yield
            finally:
                flush_traces()

    app = Litestar(
        route_handlers=[
            Router(
                API_PREFIX,
                # Every API route is rate limited (per user); AuthController's routes limit per client address.
                opt={RATE_LIMIT_OPT: Rule.API},
                route_handlers=[
                    AuthController,
                    TokensController,
                    UploadsController,
                    ChunksController,
                    tus_options,  # before TusController (see there)
                    TusController,
                    FilesController,
                    FileContentController,
                ],
            ),
            HealthController,
            metrics_endpoint(settings.core.metrics_token),
            *_web_app(settings),
        ],
        lifespan=[lifespan],
        middleware=[
            http_metrics().middleware,
            DefineMiddleware(CookieAuthenticationMiddleware),
            LogContextMiddleware(),
            # After authentication (the API limit counts per user), before CSRF and every handler.
            RateLimitMiddleware(),
            DefineMiddleware(
                HeaderCSRFMiddleware,
                config=csrf_config(secret=keys.csrf, cookie_name=cookies.csrf_name, secure=settings.core.https),
            ),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="LFUSYS",
            version=__version__,
            description="Upload very large files in parallel, checked, resumable chunks.",
            path="/api/docs",
            render_plugins=[api_docs_plugin(_built_web_dir(settings))],
        ),
        before_send=[_security_headers(settings.core.https)],
        request_max_body_size=settings.core.max_json_body_bytes,
        request_class=StrictJSONRequest,
        logging_config=None,
    )
    # Outermost the client's real address; then the request's span, if traced; then its id and access line;
    # then tus's method override, which has to come before routing.
    handler = RequestContext(MethodOverride(app.asgi_handler, path=f"{API_PREFIX}{TUS_PATH}"))
    app.asgi_handler = ForwardedHeaders(
        asgi_tracing(handler) if tracing else handler, TrustedProxies(settings.core.trusted_proxies)
    )
    return app
