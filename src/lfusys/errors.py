"""Domain errors and the one place that turns any exception into ``{"error": "..."}``.

Domain code raises the subclasses of :class:`DomainError` where a problem is known; the handlers
below map them (and Litestar's own HTTP exceptions) to the statuses in DESIGN.md §5. Anything
else is logged with its traceback and answered with a bare 500 that reveals nothing.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap

log = structlog.get_logger(__name__)


class DomainError(Exception):
    """Base class: a problem the client can understand, with the HTTP status that says it."""

    status_code: ClassVar[int] = 400

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        """Seconds after which the same request may succeed (sent as ``Retry-After``)."""


class InvalidInput(DomainError):
    status_code = 400


class BodyInterrupted(InvalidInput):
    """The client stopped sending the request body (the answer reaches nobody; it keeps logs calm)."""


class NotAuthenticated(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Gone(DomainError):
    status_code = 410


class TooLarge(DomainError):
    status_code = 413


class UnsupportedMediaType(DomainError):
    status_code = 415


class ChecksumMismatch(DomainError):
    status_code = 422


class TooManyRequests(DomainError):
    """The client sends too much at once; it should try again after ``retry_after`` seconds."""

    status_code = 429


class ServerBusy(DomainError):
    """The server takes no more of this for now; try again after ``retry_after`` seconds."""

    status_code = 503


class InsufficientStorage(DomainError):
    status_code = 507


class DependencyUnavailable(DomainError):
    status_code = 503


class ErrorBody(msgspec.Struct, frozen=True):
    """The body of every error response."""

    error: str
    """What went wrong, in words a user can act on."""


def error_responses(*status_codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a route can answer, all with :class:`ErrorBody`.

    A route that takes parameters also gets 400 (Litestar would otherwise document its own
    validation-error shape, which this app never sends).
    """
    return {
        code: ResponseSpec(data_container=ErrorBody, description=HTTPStatus(code).phrase)
        for code in sorted({400, *status_codes})
    }


def error_response(message: str, status_code: int, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response({"error": message}, status_code=status_code, headers=headers, media_type=MediaType.JSON)


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    headers = {"retry-after": str(exc.retry_after)} if exc.retry_after is not None else None
    return error_response(exc.message, exc.status_code, headers)


def _validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    return error_response(_describe_validation(exc), 400)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code >= 500:
        log.error("http exception", status=exc.status_code, detail=exc.detail)
        return error_response("internal server error" if exc.status_code == 500 else exc.detail, exc.status_code)
    headers = dict(exc.headers or {})
    return error_response(exc.detail, exc.status_code, headers or None)


def _unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled exception", method=request.method, path=request.url.path, exc_info=exc)
    return error_response("internal server error", 500)


def _describe_validation(exc: ValidationException) -> str:
    """Turn Litestar's generic message into one that names the offending field."""
    extra = exc.extra
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        first = extra[0]
        message = str(first.get("message", "")).strip()
        key = first.get("key")
        if message.startswith("Object contains unknown field"):
            return message
        if key:
            return f"{key}: {message}"
        if message:
            return message
    return "invalid request"


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: _domain_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected_error,
}
