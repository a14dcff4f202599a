"""The domain services, built over one backend; what the lifespan opens and the request handlers use."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta

import msgspec
from litestar.datastructures import State

from lfusys.auth.api_tokens import ApiTokens
from lfusys.auth.cookies import CookiePolicy
from lfusys.auth.oauth import OAuthEndpoints
from lfusys.auth.oauth_state import SignInStates
from lfusys.auth.passwords import Passwords
from lfusys.auth.service import AuthService, profile_cache
from lfusys.auth.tokens import TokenCodec
from lfusys.chunks.admission import ChunkAdmission
from lfusys.chunks.service import ChunkIngress
from lfusys.clock import Clock
from lfusys.files.cache import CachedFileStore
from lfusys.files.service import FileLibrary
from lfusys.keys import ServerKeys
from lfusys.observability.metrics import sample_queue_depth
from lfusys.rate_limits.limits import RateLimits
from lfusys.sessions.finalizer import Finalizer
from lfusys.sessions.janitor import Janitor
from lfusys.sessions.service import UploadSessions
from lfusys.sessions.worker import EventWorker
from lfusys.settings import Settings
from lfusys.storage.backend import open_backend
from lfusys.storage.ports import KV, Backend, HealthCheck
from lfusys.storage.redis import KVFailures, RedisKV, open_redis_kv
from lfusys.tus.service import TusUploads


class Services(msgspec.Struct, frozen=True, kw_only=True):
    settings: Settings
    backend: Backend
    kv: KV
    """The KV every module uses (rate limits, caches, one-time state): shared by every process when
    Redis is configured, else the backend's in-process KV. Any call may raise
    :class:`~lfusys.storage.ports.KVUnavailable`."""
    kv_failures: KVFailures
    """Calls to the KV that failed (only Redis ever fails)."""
    optional_checks: Mapping[str, HealthCheck]
    """Dependencies the service runs without, degraded (readiness reports them but stays 200)."""
    cookies: CookiePolicy
    rate_limits: RateLimits
    oauth: OAuthEndpoints
    """Where the configured sign-in providers are."""
    sign_ins: SignInStates
    """Sign-ins through a provider between its redirect and its callback (one-time state in the KV)."""
    auth: AuthService
    api_tokens: ApiTokens
    sessions: UploadSessions
    admission: ChunkAdmission
    """How many chunk bodies may stream in at once (shared by every way chunks come in)."""
    ingress: ChunkIngress
    tus: TusUploads
    """tus uploads: the same sessions and chunks, spoken as tus 1.0."""
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
    """Open the configured backend (and Redis, when configured) and build the domain services over it."""
    async with open_backend(settings, keys, clock) as backend, _open_redis(settings) as redis:
        yield build_services(settings, keys, backend, clock, redis)


@asynccontextmanager
async def _open_redis(settings: Settings) -> AsyncIterator[RedisKV | None]:
    if settings.kv.redis_url is None:
        yield None
        return
    async with open_redis_kv(settings.kv) as redis:
        yield redis


def caches_reach_every_process(settings: Settings, redis: RedisKV | None) -> bool:
    """Whether an invalidation reaches every process that may serve a cached value: Redis is shared, or
    this process's own KV is enough because it is the only one (no other server, no separate worker)."""
    return redis is not None or (not settings.kv.allow_process_kv and settings.queue.run_worker)


def build_services(
    settings: Settings, keys: ServerKeys, backend: Backend, clock: Clock, redis: RedisKV | None = None
) -> Services:
    """The services over ``backend``; their KV is ``redis`` if given, else the backend's in-process one."""
    kv = redis or backend.kv
    caching = caches_reach_every_process(settings, redis)
    # Every write to the files goes through this store, so it invalidates the cached first pages.
    files = CachedFileStore(backend.files, kv, settings.cache.cache_files_ttl if caching else timedelta(0))
    auth = AuthService(
        users=backend.users,
        tokens=backend.tokens,
        passwords=Passwords(
            time_cost=settings.auth.argon2_time_cost,
            memory_cost_kib=settings.auth.argon2_memory_cost_kib,
            parallelism=settings.auth.argon2_parallelism,
            concurrency=settings.auth.argon2_concurrency,
            queue_wait=settings.auth.argon2_queue_wait,
        ),
        codec=TokenCodec(
            access_secret=keys.jwt_access,
            refresh_secret=keys.jwt_refresh,
            access_ttl=settings.auth.access_token_ttl,
            refresh_ttl=settings.auth.refresh_token_ttl,
        ),
        reuse_grace=settings.auth.refresh_reuse_grace,
        profiles=profile_cache(kv, settings.cache.cache_profile_ttl if caching else timedelta(0)),
        clock=clock,
    )
    sessions = UploadSessions(uploads=backend.uploads, settings=settings, clock=clock)
    admission = ChunkAdmission(total=settings.uploads.max_chunk_puts, per_user=settings.uploads.max_chunk_puts_per_user)
    finalizer = Finalizer(
        uploads=backend.uploads,
        files=files,
        blobs=backend.blobs,
        worker_id=f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}",
        lease=settings.queue.finalize_lease,
        max_attempts=settings.queue.finalize_max_attempts,
        clock=clock,
    )
    ingress = ChunkIngress(
        sessions=sessions, uploads=backend.uploads, blobs=backend.blobs, admission=admission, clock=clock
    )
    return Services(
        settings=settings,
        backend=backend,
        kv=redis or backend.kv,
        kv_failures=redis.failures if redis else KVFailures(),
        optional_checks={"redis": redis.ping} if redis else {},
        cookies=cookie_policy(settings),
        rate_limits=RateLimits(kv, settings.rate_limits),
        oauth=OAuthEndpoints(settings.oauth),
        sign_ins=SignInStates(kv),
        auth=auth,
        api_tokens=ApiTokens(backend.api_tokens, clock),
        sessions=sessions,
        admission=admission,
        ingress=ingress,
        tus=TusUploads(
            sessions=sessions,
            ingress=ingress,
            finalizer=finalizer,
            store=backend.tus,
            blobs=backend.blobs,
            clock=clock,
        ),
        files=FileLibrary(
            files=files,
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
        tasks.create_task(sample_queue_depth(services.backend.queue, stop))
        try:
            yield
        finally:
            stop.set()
