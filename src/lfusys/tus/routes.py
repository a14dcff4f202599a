"""``/api/v1/tus/``: tus 1.0.0 — OPTIONS, POST (creation, creation-with-upload), HEAD, PATCH, DELETE.

Authenticated like the rest of the API (a personal API token with the ``upload`` scope, or the web
app's cookies with their CSRF header). Every answer carries ``Tus-Resumable``; errors are a short line
of plain text, as tus clients show them.
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any

from litestar import Controller, Request, Response, delete, head, patch, post, route
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import HttpMethod, MediaType
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath
from litestar.types import ExceptionHandlersMap

from lfusys.auth.middleware import TOKEN_SCOPE_OPT, provide_current_user, requires_user
from lfusys.auth.records import User
from lfusys.chunks.routes import request_body
from lfusys.errors import DomainError, InvalidInput
from lfusys.http import whole_number
from lfusys.services import services_from
from lfusys.tus.protocol import (
    CHECKSUM_ALGORITHMS,
    EXTENSIONS,
    VERSION,
    UnsupportedVersion,
    check_content_type,
    check_version,
    parse_checksum,
    parse_concat,
    parse_metadata,
)
from lfusys.tus.service import TusState, TusUploads, expires_at

TUS_PATH = "/tus"


def _headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": VERSION, **extra}


def _plain(message: str, status_code: int, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(message + "\n", status_code=status_code, media_type=MediaType.TEXT, headers=headers or _headers())


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[str]:
    headers = _headers()
    if isinstance(exc, UnsupportedVersion):
        headers["Tus-Version"] = VERSION
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return _plain(exc.message, exc.status_code, headers)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[str]:
    if exc.status_code >= 500:
        return _plain("internal server error", exc.status_code)
    return _plain(exc.detail, exc.status_code, _headers(**dict(exc.headers or {})))


async def requires_tus_version(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 412 unless the request says ``Tus-Resumable: 1.0.0``."""
    check_version(connection.headers.get("tus-resumable"))


async def provide_tus(state: State) -> TusUploads:
    return services_from(state).tus


def _expiry(state: TusState) -> dict[str, str]:
    moment = expires_at(state)
    return {"Upload-Expires": format_datetime(moment, usegmt=True)} if moment else {}


def _url(request: Request[Any, Any, Any], upload_id: str) -> str:
    """Where the upload created by ``request`` lives (a path, which clients resolve against the endpoint)."""
    return f"{request.url.path.rstrip('/')}/{upload_id}"


def _creation_length(request: Request[Any, Any, Any], *, partial: bool) -> int | None:
    """``Upload-Length``, or ``None`` for ``Upload-Defer-Length: 1`` (one of the two, not both)."""
    length, defer = request.headers.get("upload-length"), request.headers.get("upload-defer-length")
    if defer is None:
        return whole_number("Upload-Length", length)
    if defer.strip() != "1":
        raise InvalidInput("Upload-Defer-Length: must be 1")
    if length is not None:
        raise InvalidInput("give Upload-Length or Upload-Defer-Length, not both")
    if partial:
        raise InvalidInput("a partial upload needs its Upload-Length")
    return None


@route([TUS_PATH, f"{TUS_PATH}/{{upload_id:str}}"], http_method=HttpMethod.OPTIONS, include_in_schema=False)
async def tus_options(request: Request[Any, Any, Any]) -> Response[None]:
    """What this server speaks (no sign-in needed).

    Register it before :class:`TusController`: Litestar keeps the first OPTIONS handler a path gets, and
    makes its own for a path it first sees without one.
    """
    max_size = services_from(request.app.state).settings.uploads.max_file_size
    return Response(
        None,
        status_code=204,
        headers=_headers(
            **{
                "Tus-Version": VERSION,
                "Tus-Extension": ",".join(EXTENSIONS),
                "Tus-Max-Size": str(max_size),
                "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
            }
        ),
    )


class TusController(Controller):
    path = TUS_PATH
    tags = ["tus"]
    opt = {TOKEN_SCOPE_OPT: "upload"}
    guards = [requires_tus_version, requires_user]
    dependencies = {"current_user": Provide(provide_current_user), "tus": Provide(provide_tus)}
    exception_handlers: ExceptionHandlersMap = {DomainError: _domain_error, HTTPException: _http_error}
    include_in_schema = False

    @post("/", request_max_body_size=None)
    async def create(
        self, request: Request[Any, Any, Any], current_user: NamedDependency[User], tus: NamedDependency[TusUploads]
    ) -> Response[bytes]:
        """Creation (with a length, or deferring it), creation-with-upload when a body comes with it, and
        concatenation (a partial upload, or a final one made of partial ones)."""
        headers = request.headers
        raw_metadata = headers.get("upload-metadata", "")
        metadata = parse_metadata(raw_metadata)
        concat = parse_concat(headers.get("upload-concat"))
        has_body = "content-type" in headers or headers.get("content-length", "0") not in ("", "0")
        if concat is not None and concat.final:
            if "upload-length" in headers or "upload-defer-length" in headers:
                raise InvalidInput("a final upload's length is its partial uploads' together: give no Upload-Length")
            if has_body:
                raise InvalidInput("a final upload is made of its partial uploads; it takes no bytes")
            upload = await tus.join(current_user, list(concat.partial_ids), metadata, raw_metadata)
            return Response(
                b"", status_code=201, media_type=MediaType.TEXT, headers=_headers(Location=_url(request, upload.id))
            )
        length = _creation_length(request, partial=concat is not None)
        checksum = None
        if has_body:
            check_content_type(headers.get("content-type"))
            checksum = parse_checksum(headers.get("upload-checksum"))
        upload = await tus.create(current_user, length, metadata, raw_metadata, partial=concat is not None)
        response_headers = _headers(Location=_url(request, upload.id))
        if has_body:
            offset = await tus.write(current_user, upload.id, 0, request_body(request), checksum)
            response_headers["Upload-Offset"] = str(offset)
        state = await tus.get(current_user, upload.id)
        return Response(b"", status_code=201, media_type=MediaType.TEXT, headers=response_headers | _expiry(state))

    @head("/{upload_id:str}")
    async def offset(
        self,
        upload_id: FromPath[str],
        request: Request[Any, Any, Any],
        current_user: NamedDependency[User],
        tus: NamedDependency[TusUploads],
    ) -> Response[None]:
        state = await tus.get(current_user, upload_id)
        upload = state.upload
        headers = _headers(**{"Upload-Offset": str(upload.offset), "Cache-Control": "no-store"})
        if upload.deferred:
            headers["Upload-Defer-Length"] = "1"
        else:
            headers["Upload-Length"] = str(upload.length)
        if upload.concat == "partial":
            headers["Upload-Concat"] = "partial"
        elif upload.concat == "final":
            base = request.url.path.rstrip("/").rsplit("/", 1)[0]
            headers["Upload-Concat"] = "final;" + " ".join(f"{base}/{source}" for source in state.session.sources)
        if upload.metadata:
            headers["Upload-Metadata"] = upload.metadata
        return Response(None, status_code=200, headers=headers | _expiry(state))

    @patch("/{upload_id:str}", request_max_body_size=None, status_code=204)
    async def append(
        self,
        upload_id: FromPath[str],
        request: Request[Any, Any, Any],
        current_user: NamedDependency[User],
        tus: NamedDependency[TusUploads],
    ) -> Response[None]:
        check_content_type(request.headers.get("content-type"))
        offset = whole_number("Upload-Offset", request.headers.get("upload-offset"))
        checksum = parse_checksum(request.headers.get("upload-checksum"))
        length = request.headers.get("upload-length")
        new_offset = await tus.write(
            current_user,
            upload_id,
            offset,
            request_body(request),
            checksum,
            length=whole_number("Upload-Length", length) if length is not None else None,
        )
        state = await tus.get(current_user, upload_id)
        return Response(None, status_code=204, headers=_headers(**{"Upload-Offset": str(new_offset)}) | _expiry(state))

    @delete("/{upload_id:str}", status_code=204)
    async def terminate(
        self,
        upload_id: FromPath[str],
        current_user: NamedDependency[User],
        tus: NamedDependency[TusUploads],
    ) -> Response[None]:
        await tus.terminate(current_user, upload_id)
        return Response(None, status_code=204, headers=_headers())
