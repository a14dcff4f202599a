"""What the lifespan opens and the request handlers use, kept on ``app.state``."""

from __future__ import annotations

import msgspec
from litestar.datastructures import State

from lfusys.auth.cookies import CookiePolicy
from lfusys.auth.service import AuthService
from lfusys.chunks.service import ChunkIngress
from lfusys.files.service import FileLibrary
from lfusys.sessions.finalizer import Finalizer
from lfusys.sessions.janitor import Janitor
from lfusys.sessions.service import UploadSessions
from lfusys.sessions.worker import EventWorker
from lfusys.settings import Settings
from lfusys.storage.ports import BlobStore, EventQueue, MetadataStore


class Services(msgspec.Struct, frozen=True, kw_only=True):
    settings: Settings
    metadata: MetadataStore
    blobs: BlobStore
    queue: EventQueue
    cookies: CookiePolicy
    auth: AuthService
    sessions: UploadSessions
    ingress: ChunkIngress
    files: FileLibrary
    finalizer: Finalizer
    worker: EventWorker
    janitor: Janitor


def services_from(state: State) -> Services:
    services: Services = state["services"]
    return services
