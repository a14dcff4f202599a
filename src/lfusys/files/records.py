"""The records of finished files, as the files module and every store adapter know them."""

from __future__ import annotations

from datetime import datetime

import msgspec


class FileRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    owner_id: str
    upload_id: str
    name: str
    type: str
    size: int
    checksum: str
    """SHA-256 (hex) of the concatenated SHA-256 digests of the chunks, in order."""
    created_at: datetime


class FilePage(msgspec.Struct, frozen=True, kw_only=True):
    files: list[FileRecord]
    next_cursor: str | None
