"""The application factory: ``create_app(settings)`` wires modules, adapters and middleware."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
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
from lfusys.auth.cookies import CookiePolicy
from lfusys.auth.csrf import HeaderCSRFMiddleware, csrf_config
from lfusys.auth.middleware import CookieAuthenticationMiddleware
from lfusys.auth.passwords import Passwords
from lfusys.auth.routes import AuthController
from lfusys.auth.service import AuthService
from lfusys.auth.tokens import TokenCodec
from lfusys.chunks.admission import ChunkAdmission
from lfusys.chunks.routes import ChunksController
from lfusys.chunks.service import ChunkIngress
from lfusys.clock import Clock, utc_now
from lfusys.errors import EXCEPTION_HANDLERS
from lfusys.files.routes import FileContentController, FilesController
from lfusys.files.service import FileLibrary
from lfusys.files.signing import DownloadSigner
from lfusys.http import StrictJSONRequest
from lfusys.keys import ServerKeys, load_or_create_keys
from lfusys.observability.health import HealthController
from lfusys.observability.logging import configure_logging
from lfusys.observability.request_context import RequestContext
from lfusys.services import Services
from lfusys.sessions.finalizer import Finalizer
from lfusys.sessions.janitor import Janitor
from lfusys.sessions.routes import UploadsController
from lfusys.sessions.service import UploadSessions
from lfusys.sessions.worker import EventWorker
from lfusys.settings import Settings, load_settings
from lfusys.storage.local import Database, SqliteMetadataStore, apply_migrations
from lfusys.storage.local.blobs import LocalBlobStore
from lfusys.storage.local.queue import LocalEventQueue
from lfusys.web import api_docs_plugin, default_web_dir, web_routes

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"


def _cookie_policy(settings: Settings) -> CookiePolicy:
    return CookiePolicy(
        secure=settings.https,
        access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
    )


@asynccontextmanager
async def open_services(settings: Settings, keys: ServerKeys, clock: Clock = utc_now) -> AsyncIterator[Services]:
    """Open the embedded backend and build the domain services on top of it."""
    database = await Database.open(settings.database_path)
    try:
        await apply_migrations(database)
        yield build_services(settings, keys, database, clock)
    finally:
        await database.close()


def build_services(settings: Settings, keys: ServerKeys, database: Database, clock: Clock) -> Services:
    metadata = SqliteMetadataStore(database)
    queue = LocalEventQueue(database, max_receives=settings.queue_max_receives)
    blobs = LocalBlobStore(settings.blob_root, on_object_created=queue.send)
    auth = AuthService(
        users=metadata.users,
        tokens=metadata.tokens,
        passwords=Passwords(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        ),
        codec=TokenCodec(
            access_secret=keys.jwt_access,
            refresh_secret=keys.jwt_refresh,
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
        ),
        reuse_grace=settings.refresh_reuse_grace,
        clock=clock,
    )
    sessions = UploadSessions(uploads=metadata.uploads, settings=settings, clock=clock)
    finalizer = Finalizer(
        uploads=metadata.uploads,
        files=metadata.files,
        blobs=blobs,
        worker_id=f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}",
        lease=settings.finalize_lease,
        max_attempts=settings.finalize_max_attempts,
        clock=clock,
    )
    return Services(
        settings=settings,
        metadata=metadata,
        blobs=blobs,
        queue=queue,
        cookies=_cookie_policy(settings),
        auth=auth,
        sessions=sessions,
        ingress=ChunkIngress(
            sessions=sessions,
            uploads=metadata.uploads,
            blobs=blobs,
            admission=ChunkAdmission(per_user=settings.max_chunk_puts_per_user),
            clock=clock,
        ),
        files=FileLibrary(
            files=metadata.files,
            blobs=blobs,
            signer=DownloadSigner(keys.download_signing),
            link_ttl=settings.download_url_ttl,
            clock=clock,
        ),
        finalizer=finalizer,
        worker=EventWorker(
            queue=queue,
            finalizer=finalizer,
            concurrency=settings.worker_concurrency,
            visibility_timeout=settings.queue_visibility_timeout,
            wait_time=settings.queue_wait_time,
        ),
        janitor=Janitor(
            uploads=metadata.uploads,
            files=metadata.files,
            blobs=blobs,
            finalizer=finalizer,
            interval=settings.janitor_interval,
            stalled_after=settings.stalled_after,
            clock=clock,
        ),
    )


@asynccontextmanager
async def background_work(services: Services) -> AsyncIterator[None]:
    """The event worker and the janitor, running until the context exits."""
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(services.worker.run(stop))
        tasks.create_task(services.janitor.run(stop))
        try:
            yield
        finally:
            stop.set()


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
    directory = settings.web_dir or default_web_dir()
    return directory if (directory / "index.html").is_file() else None


def _web_app(settings: Settings) -> list[Router | HTTPRouteHandler]:
    directory = _built_web_dir(settings)
    if directory is None:
        log.warning("web app not built; serving the API only", web_dir=str(settings.web_dir or default_web_dir()))
        return []
    return web_routes(directory)


def create_app(settings: Settings | None = None, clock: Clock = utc_now) -> Litestar:
    """Build the application. Nothing is opened until the lifespan starts; ``clock`` is "now" for
    every service (tests move it)."""
    settings = settings or load_settings()
    configure_logging(settings)
    keys = load_or_create_keys(settings)
    cookies = _cookie_policy(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services(settings, keys, clock) as services:
            app.state["services"] = services
            if settings.run_worker:
                async with background_work(services):
                    yield
            else:
                yield

    app = Litestar(
        route_handlers=[
            Router(
                API_PREFIX,
                route_handlers=[
                    AuthController,
                    UploadsController,
                    ChunksController,
                    FilesController,
                    FileContentController,
                ],
            ),
            HealthController,
            *_web_app(settings),
        ],
        lifespan=[lifespan],
        middleware=[
            DefineMiddleware(CookieAuthenticationMiddleware),
            DefineMiddleware(
                HeaderCSRFMiddleware,
                config=csrf_config(secret=keys.csrf, cookie_name=cookies.csrf_name, secure=settings.https),
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
        before_send=[_security_headers(settings.https)],
        request_max_body_size=settings.max_json_body_bytes,
        request_class=StrictJSONRequest,
        logging_config=None,
    )
    app.asgi_handler = RequestContext(app.asgi_handler)
    return app
