"""HTTP ``Range: bytes=…`` for one range (RFC 9110 §14)."""

from __future__ import annotations

import re

from lfusys.storage.ports import ByteRange

_SINGLE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$", re.IGNORECASE)


class RangeNotSatisfiable(ValueError):
    """Answer 416 with ``Content-Range: bytes */size``."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range asked for, clipped to the file; ``None`` means send the whole file.

    A unit other than ``bytes`` is ignored and several ranges at once are answered with the whole
    file (both as RFC 9110 allows); a malformed or unsatisfiable byte range raises
    :class:`RangeNotSatisfiable`.
    """
    if header is None:
        return None
    value = header.strip().replace(" ", "")
    unit, equals, ranges = value.partition("=")
    if not equals:
        raise RangeNotSatisfiable(f"malformed range {header!r}")
    if unit.lower() != "bytes" or "," in ranges:
        return None
    match = _SINGLE.match(value)
    if match is None:
        raise RangeNotSatisfiable(f"unsupported range {header!r}")
    first, last = match.groups()
    if not first:
        if not last or int(last) == 0:
            raise RangeNotSatisfiable("empty suffix range")
        return ByteRange(max(size - int(last), 0), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if end < start or start >= size:
        raise RangeNotSatisfiable(f"range {header!r} is outside 0-{size - 1}")
    return ByteRange(start, min(end, size - 1))
