"""What the lifespan opens and the request handlers use, kept on ``app.state``."""

from __future__ import annotations

import msgspec
from litestar.datastructures import State

from lfusys.auth.cookies import CookiePolicy
from lfusys.auth.service import AuthService
from lfusys.settings import Settings
from lfusys.storage.ports import MetadataStore


class Services(msgspec.Struct, frozen=True, kw_only=True):
    settings: Settings
    metadata: MetadataStore
    auth: AuthService
    cookies: CookiePolicy


def services_from(state: State) -> Services:
    services: Services = state["services"]
    return services
