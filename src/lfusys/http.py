"""HTTP pieces shared by every module's routes."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from lfusys.errors import Forbidden, UnsupportedMediaType
from lfusys.services import services_from

CSRF_HEADER = "x-csrf-token"


def requires_json_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 415 unless the request declares a JSON body (``application/json`` or ``*+json``)."""
    media_type = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("expected Content-Type: application/json")


def requires_csrf_header(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard for routes excluded from the CSRF middleware: the header must echo the CSRF cookie."""
    cookie = connection.cookies.get(services_from(connection.app.state).cookies.csrf_name, "")
    header = connection.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise Forbidden("CSRF token verification failed")
