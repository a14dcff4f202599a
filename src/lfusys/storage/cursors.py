"""Page cursors: a position in a listing, as opaque text a client hands back for the next page.

A cursor is a short tuple of strings (e.g. a file's creation time and id), JSON-encoded and
base64url'd. Anything the server did not make is refused with ``ValueError``, cheaply: the length
is bounded and decoding stops at the first value that is not a string.
"""

from __future__ import annotations

import base64

import msgspec

_MAX_CURSOR_LENGTH = 256  # a real cursor is about 110 characters


def encode_cursor(*position: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> tuple[str, ...]:
    """The ``length`` strings a cursor holds; ``ValueError`` for anything else."""
    if len(cursor) > _MAX_CURSOR_LENGTH or not cursor.isascii():
        raise ValueError("malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = msgspec.json.decode(raw, type=tuple[str, ...])
    except (ValueError, msgspec.DecodeError) as exc:
        raise ValueError("malformed cursor") from exc
    if len(position) != length:
        raise ValueError("malformed cursor")
    return position
