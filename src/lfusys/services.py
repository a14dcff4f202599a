"""The domain services, built over one backend; what the lifespan opens and the request handlers use."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from litestar.datastructures import State

from lfusys.auth.cookies import CookiePolicy
from lfusys.auth.passwords import Passwords
from lfusys.auth.service import AuthService
from lfusys.auth.tokens import TokenCodec
from lfusys.chunks.admission import ChunkAdmission
from lfusys.chunks.service import ChunkIngress
from lfusys.clock import Clock
from lfusys.files.service import FileLibrary
from lfusys.keys import ServerKeys
from lfusys.sessions.finalizer import Finalizer
from lfusys.sessions.janitor import Janitor
from lfusys.sessions.service import UploadSessions
from lfusys.sessions.worker import EventWorker
from lfusys.settings import Settings
from lfusys.storage.backend import open_backend
from lfusys.storage.ports import Backend


class Services(msgspec.Struct, frozen=True, kw_only=True):
    settings: Settings
    backend: Backend
    cookies: CookiePolicy
    auth: AuthService
    sessions: UploadSessions
    admission: ChunkAdmission
    """How many chunk bodies may stream in at once (shared by every way chunks come in)."""
    ingress: ChunkIngress
    files: FileLibrary
    finalizer: Finalizer
    worker: EventWorker
    janitor: Janitor


def services_from(state: State) -> Services:
    services: Services = state["services"]
    return services


def cookie_policy(settings: Settings) -> CookiePolicy:
    return CookiePolicy(
        secure=settings.core.https,
        access_ttl=settings.auth.access_token_ttl,
        refresh_ttl=settings.auth.refresh_token_ttl,
    )


@asynccontextmanager
async def open_services(settings: Settings, keys: ServerKeys, clock: Clock) -> AsyncIterator[Services]:
    """Open the configured backend and build the domain services over it."""
    async with open_backend(settings, keys, clock) as backend:
        yield build_services(settings, keys, backend, clock)


def build_services(settings: Settings, keys: ServerKeys, backend: Backend, clock: Clock) -> Services:
    auth = AuthService(
        users=backend.users,
        tokens=backend.tokens,
        passwords=Passwords(
            time_cost=settings.auth.argon2_time_cost,
            memory_cost_kib=settings.auth.argon2_memory_cost_kib,
            parallelism=settings.auth.argon2_parallelism,
        ),
        codec=TokenCodec(
            access_secret=keys.jwt_access,
            refresh_secret=keys.jwt_refresh,
            access_ttl=settings.auth.access_token_ttl,
            refresh_ttl=settings.auth.refresh_token_ttl,
        ),
        reuse_grace=settings.auth.refresh_reuse_grace,
        clock=clock,
    )
    sessions = UploadSessions(uploads=backend.uploads, settings=settings, clock=clock)
    admission = ChunkAdmission(total=settings.uploads.max_chunk_puts, per_user=settings.uploads.max_chunk_puts_per_user)
    finalizer = Finalizer(
        uploads=backend.uploads,
        files=backend.files,
        blobs=backend.blobs,
        worker_id=f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}",
        lease=settings.queue.finalize_lease,
        max_attempts=settings.queue.finalize_max_attempts,
        clock=clock,
    )
    return Services(
        settings=settings,
        backend=backend,
        cookies=cookie_policy(settings),
        auth=auth,
        sessions=sessions,
        admission=admission,
        ingress=ChunkIngress(
            sessions=sessions, uploads=backend.uploads, blobs=backend.blobs, admission=admission, clock=clock
        ),
        files=FileLibrary(
            files=backend.files,
            blobs=backend.blobs,
            links=backend.links,
            link_ttl=settings.uploads.download_url_ttl,
            clock=clock,
        ),
        finalizer=finalizer,
        worker=EventWorker(
            queue=backend.queue,
            finalizer=finalizer,
            concurrency=settings.queue.worker_concurrency,
            visibility_timeout=settings.queue.queue_visibility_timeout,
            wait_time=settings.queue.queue_wait_time,
        ),
        janitor=Janitor(
            uploads=backend.uploads,
            blobs=backend.blobs,
            finalizer=finalizer,
            interval=settings.queue.janitor_interval,
            stalled_after=settings.queue.stalled_after,
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
