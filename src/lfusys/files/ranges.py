"""HTTP ``Range: bytes=…`` for one range (RFC 9110 §14)."""

from __future__ import annotations

import re

import msgspec

_MAX_DIGITS = 20  # 10**20 bytes is far beyond any file
_SINGLE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$", re.IGNORECASE)


class ByteRange(msgspec.Struct, frozen=True):
    start: int
    end: int
    """Inclusive, as in HTTP ``Range``."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1


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
        if not last or _position(last) == 0:
            raise RangeNotSatisfiable("empty suffix range")
        return ByteRange(max(size - _position(last), 0), size - 1)
    start = _position(first)
    end = _position(last) if last else size - 1
    if end < start or start >= size:
        raise RangeNotSatisfiable(f"range {header!r} is outside 0-{size - 1}")
    return ByteRange(start, min(end, size - 1))


def _position(digits: str) -> int:
    """A byte position; one with more digits than any file size is simply "beyond the end"
    (converting thousands of digits to an int is refused by Python, and slow)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS
