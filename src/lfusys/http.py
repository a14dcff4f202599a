"""HTTP pieces shared by every module's routes."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from lfusys.errors import InvalidInput, UnsupportedMediaType

_WHOLE_NUMBER = re.compile(r"^[0-9]{1,19}$")
_VALIDATION_PATH = re.compile(r"^(?P<message>.*?) - at `\$\.?(?P<path>[^`]*)`$")


def whole_number(name: str, header: str | None) -> int:
    """A header that must be a non-negative whole number (at most 19 digits); 400 if it is missing or not one."""
    if header is None:
        raise InvalidInput(f"{name} header missing")
    if not _WHOLE_NUMBER.match(header.strip()):
        raise InvalidInput(f"{name}: must be a whole number")
    return int(header)


async def requires_json_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 415 unless the request declares a JSON body (``application/json`` or ``*+json``)."""
    media_type = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("expected Content-Type: application/json")


class StrictJSONRequest(Request[Any, Any, Any]):
    """Decodes JSON bodies strictly, so every bad body is a clear 400.

    Litestar decodes a body leniently (``"10"`` and ``10.0`` become the integer 10) and lets a
    body nested thousands of levels deep, or holding bytes that are not UTF-8, escape as a 500.
    Here the body must be valid UTF-8 JSON and match the handler's declared type exactly before
    Litestar sees it.
    """

    async def json(self) -> Any:
        body = await self.body() or b"null"
        try:
            value = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"request body is not valid JSON: {exc}") from None
        except UnicodeDecodeError:
            raise InvalidInput("request body is not valid JSON: it is not UTF-8") from None
        except RecursionError:
            raise InvalidInput("request body is not valid JSON: it is nested too deeply") from None
        declared = self.route_handler.parsed_data_field
        if declared is not None:
            try:
                msgspec.json.decode(body, type=declared.annotation, strict=True)
            except msgspec.ValidationError as exc:
                raise InvalidInput(describe_validation_error(exc)) from None
        return value


def describe_validation_error(exc: msgspec.ValidationError) -> str:
    """``Expected `int`, got `str` - at `$.file_size``` → ``file_size: expected `int`, got `str```."""
    text = str(exc)
    match = _VALIDATION_PATH.match(text)
    if match is None or not match["path"]:
        return text
    message = match["message"]
    return f"{match['path']}: {message[:1].lower()}{message[1:]}"
