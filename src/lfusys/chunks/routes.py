"""``PUT /api/v1/uploads/{upload_id}/chunks/{n}``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, cast

from litestar import Controller, Request, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.types import HTTPRequestEvent

from lfusys.auth.middleware import TOKEN_SCOPE_OPT, provide_current_user, requires_user
from lfusys.auth.records import User
from lfusys.chunks.service import ChunkIngress, ChunkReceipt
from lfusys.errors import BodyInterrupted, InvalidInput, error_responses
from lfusys.http import whole_number
from lfusys.services import services_from
from lfusys.settings import MAX_CHUNKS

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_CHUNK_NUMBER = re.compile(r"^[0-9]{1,6}$")  # at most 10,000 chunks


def parse_chunk_number(text: str) -> int:
    if not _CHUNK_NUMBER.match(text) or int(text) < 1:
        raise InvalidInput(f"chunk number must be a whole number from 1 to {MAX_CHUNKS}")
    return int(text)


def parse_chunk_hash(header: str | None) -> str:
    value = (header or "").strip().lower()
    if not _SHA256_HEX.match(value):
        raise InvalidInput("X-Chunk-Hash: must be the chunk's SHA-256 as 64 hex digits")
    return value


def parse_content_length(header: str | None) -> int | None:
    return None if header is None else whole_number("Content-Length", header)


async def request_body(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    """The request body, straight from the server's ASGI messages.

    The hot loop of every chunk, so it is the only layer between the server and the blob store (the
    blob store caps the length). A client that goes away mid-chunk (pause, cancel, lost network) is
    not a server error: it is reported as an interrupted body instead of a 500. (The tus PATCH reads
    its body the same way.)
    """
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyInterrupted("the connection closed before the whole chunk arrived")
        request_message = cast("HTTPRequestEvent", message)
        if request_message["body"]:
            yield request_message["body"]
        if not request_message.get("more_body", False):
            return


async def provide_ingress(state: State) -> ChunkIngress:
    return services_from(state).ingress


class ChunksController(Controller):
    path = "/uploads/{upload_id:str}/chunks"
    tags = ["uploads"]
    guards = [requires_user]
    opt = {TOKEN_SCOPE_OPT: "upload"}
    dependencies = {"current_user": Provide(provide_current_user), "ingress": Provide(provide_ingress)}

    @put(
        "/{n:str}",
        operation_id="putChunk",
        responses=error_responses(401, 403, 404, 409, 410, 413, 422, 429, 503, 507),
        # The body is capped at the chunk's exact length by the ingress instead.
        request_max_body_size=None,
    )
    async def put_chunk(
        self,
        upload_id: FromPath[str],
        n: FromPath[str],
        request: Request[Any, Any, Any],
        current_user: NamedDependency[User],
        ingress: NamedDependency[ChunkIngress],
    ) -> ChunkReceipt:
        """Store chunk ``n`` (1-based). The body must be exactly the chunk's length and match
        ``X-Chunk-Hash`` (SHA-256, hex). Re-sending a stored chunk is harmless."""
        return await ingress.receive(
            current_user,
            upload_id,
            parse_chunk_number(n),
            sha256=parse_chunk_hash(request.headers.get("x-chunk-hash")),
            content_length=parse_content_length(request.headers.get("content-length")),
            body=request_body(request),
        )
