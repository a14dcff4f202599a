"""The rules a new upload must satisfy: file name, media type, size, quota and chunk size."""

from __future__ import annotations

import math
import re
import unicodedata

import msgspec

from lfusys.errors import InvalidInput, TooLarge
from lfusys.settings import MAX_CHUNKS, MiB, Settings

DEFAULT_FILE_TYPE = "application/octet-stream"
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
# Bidirectional overrides can make "evil‮txt.exe" display as "evilexe.txt".
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


class ChunkPlan(msgspec.Struct, frozen=True):
    chunk_size: int
    total_chunks: int


def clean_file_name(name: str) -> str:
    """The name as stored: NFC, path separators replaced, control characters removed, trimmed."""
    cleaned = "".join(
        "_" if char in "/\\" else char
        for char in unicodedata.normalize("NFC", name)
        if unicodedata.category(char) != "Cc" and char not in _BIDI_CONTROLS
    ).strip()
    if cleaned in {"", ".", ".."}:
        raise InvalidInput("file_name: must contain a visible character other than dots")
    if len(cleaned) > 255:
        raise InvalidInput("file_name: must be at most 255 characters")
    return cleaned


def clean_file_type(file_type: str) -> str:
    """A ``type/subtype`` media type in lower case; empty means unknown (``application/octet-stream``)."""
    media_type = file_type.strip().lower()
    if not media_type:
        return DEFAULT_FILE_TYPE
    if not _MEDIA_TYPE.match(media_type):
        raise InvalidInput("file_type: must be a media type such as image/png")
    return media_type


def check_file_size(file_size: int, settings: Settings) -> None:
    if file_size < 1:
        raise InvalidInput("file_size: must be at least 1 byte")
    if file_size > settings.uploads.max_file_size:
        raise TooLarge(f"file_size: files may be at most {settings.uploads.max_file_size} bytes")


def quota_exceeded(used: int, quota: int) -> TooLarge:
    """The refusal of an upload that does not fit in what is left of the quota."""
    return TooLarge(f"storage quota exceeded: {max(quota - used, 0)} of {quota} bytes left")


def plan_chunks(file_size: int, proposed: int | None, settings: Settings) -> ChunkPlan:
    """Choose the chunk size: the client's proposal if within bounds, else the default, growing
    (in whole MiB) only as needed to stay within :data:`MAX_CHUNKS`; never larger than the file."""
    if proposed is not None:
        if proposed < settings.uploads.min_chunk_size:
            raise InvalidInput(f"chunk_size: must be at least {settings.uploads.min_chunk_size} bytes")
        if proposed > settings.uploads.max_chunk_size:
            raise InvalidInput(f"chunk_size: must be at most {settings.uploads.max_chunk_size} bytes")
        if math.ceil(file_size / proposed) > MAX_CHUNKS:
            raise InvalidInput(f"chunk_size: too small, the file would need more than {MAX_CHUNKS} chunks")
        chunk_size = proposed
    else:
        chunk_size = settings.uploads.default_chunk_size
        if math.ceil(file_size / chunk_size) > MAX_CHUNKS:
            # Settings guarantee max_chunk_size * MAX_CHUNKS >= max_file_size, so the cap still fits.
            chunk_size = min(math.ceil(file_size / MAX_CHUNKS / MiB) * MiB, settings.uploads.max_chunk_size)
    chunk_size = min(chunk_size, file_size)
    return ChunkPlan(chunk_size=chunk_size, total_chunks=math.ceil(file_size / chunk_size))
