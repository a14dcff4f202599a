"""``PUT /api/v1/uploads/{upload_id}/chunks/{n}``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import InternalServerException
from litestar.params import FromPath

from lfusys.auth import provide_current_user, requires_user
from lfusys.chunks.service import ChunkIngress, ChunkReceipt, parse_chunk_hash, parse_content_length
from lfusys.errors import BodyInterrupted
from lfusys.services import services_from
from lfusys.storage.ports import User


async def _body(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    """The request body; a client that goes away mid-chunk (pause, cancel, lost network) is not a
    server error, so it is reported as an interrupted body instead of a 500."""
    try:
        async for piece in request.stream():
            yield piece
    except InternalServerException:  # what Litestar raises on http.disconnect
        raise BodyInterrupted("the connection closed before the whole chunk arrived") from None


async def provide_ingress(state: State) -> ChunkIngress:
    return services_from(state).ingress


class ChunksController(Controller):
    path = "/uploads/{upload_id:str}/chunks"
    tags = ["uploads"]
    guards = [requires_user]
    dependencies = {"current_user": Provide(provide_current_user), "ingress": Provide(provide_ingress)}

    @put(
        "/{n:int}",
        operation_id="putChunk",
        # The body is capped at the chunk's exact length by the ingress instead.
        request_max_body_size=None,
    )
    async def put_chunk(
        self,
        upload_id: FromPath[str],
        n: FromPath[int],
        request: Request[Any, Any, Any],
        current_user: NamedDependency[User],
        ingress: NamedDependency[ChunkIngress],
    ) -> ChunkReceipt:
        """Store chunk ``n`` (1-based). The body must be exactly the chunk's length and match
        ``X-Chunk-Hash`` (SHA-256, hex). Re-sending a stored chunk is harmless."""
        return await ingress.receive(
            current_user,
            upload_id,
            n,
            sha256=parse_chunk_hash(request.headers.get("x-chunk-hash")),
            content_length=parse_content_length(request.headers.get("content-length")),
            body=_body(request),
        )
