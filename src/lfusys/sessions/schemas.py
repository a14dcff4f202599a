"""Request and response bodies of the uploads API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from lfusys.sessions.records import ChunkPage, SessionPage, UploadSession


class CreateUpload(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    file_name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    file_type: Annotated[str, msgspec.Meta(max_length=255)]
    file_size: Annotated[int, msgspec.Meta(ge=1)]
    chunk_size: Annotated[int, msgspec.Meta(ge=1)] | None = None


class UploadCreated(msgspec.Struct, frozen=True, kw_only=True):
    upload_id: str
    chunk_size: int
    total_chunks: int
    expires_at: datetime


class UploadView(msgspec.Struct, frozen=True, kw_only=True):
    upload_id: str
    file_name: str
    file_type: str
    file_size: int
    status: str
    progress: float
    """Percentage of chunks stored, 0 to 100."""
    uploaded_chunks: int
    total_chunks: int
    chunk_size: int
    created_at: datetime
    expires_at: datetime
    file_id: str | None
    failure_reason: str | None
    """Why the upload ``failed``, in a few words (``null`` otherwise)."""

    @classmethod
    def of(cls, session: UploadSession) -> UploadView:
        uploaded = min(session.stored_chunks, session.total_chunks)
        return cls(
            upload_id=session.id,
            file_name=session.file_name,
            file_type=session.file_type,
            file_size=session.file_size,
            status=session.status.value,
            # A session joined from others has no chunks of its own: all its bytes are there from the start.
            progress=round(100 * uploaded / session.total_chunks, 2) if session.total_chunks else 100.0,
            uploaded_chunks=uploaded,
            total_chunks=session.total_chunks,
            chunk_size=session.chunk_size,
            created_at=session.created_at,
            expires_at=session.expires_at,
            file_id=session.file_id,
            failure_reason=session.failure_reason,
        )


class UploadList(msgspec.Struct, frozen=True, kw_only=True):
    """One page of the caller's unfinished uploads, newest first."""

    uploads: list[UploadView]
    next_cursor: str | None
    """Pass back as ``cursor`` for the next page; ``null`` on the last one."""

    @classmethod
    def of(cls, page: SessionPage) -> UploadList:
        return cls(uploads=[UploadView.of(s) for s in page.sessions], next_cursor=page.next_cursor)


class ChunkList(msgspec.Struct, frozen=True, kw_only=True):
    """One page of the chunks already stored."""

    chunks: list[int]
    """Numbers of the chunks already stored, ascending."""
    hashes: dict[str, str]
    """SHA-256 (hex) of each stored chunk, keyed by its number, where known."""
    next_cursor: str | None
    """Pass back as ``cursor`` for the next page; ``null`` on the last one."""

    @classmethod
    def of(cls, page: ChunkPage) -> ChunkList:
        return cls(
            chunks=[chunk.n for chunk in page.chunks],
            hashes={str(chunk.n): chunk.sha256 for chunk in page.chunks if chunk.sha256},
            next_cursor=page.next_cursor,
        )
