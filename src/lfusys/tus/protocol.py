"""The tus 1.0.0 headers: what is announced, and how each request header is read (a bad one is a 400
with a short reason, before anything is stored)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from lfusys.errors import DomainError, InvalidInput

VERSION = "1.0.0"
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "expiration",
    "checksum",
    "concatenation",
)
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"

_METADATA_KEY = re.compile(r"^[^\s,]+$")
_UPLOAD_PATH = re.compile(r"/tus/([0-9a-f]{32})/?$")
MAX_METADATA_LENGTH = 4096


class UnsupportedVersion(DomainError):
    """``Tus-Resumable`` is missing or names a version this server does not speak."""

    status_code = 412


class OffsetMismatch(DomainError):
    status_code = 409


class WrongContentType(DomainError):
    status_code = 415


class ChecksumFailed(DomainError):
    """The body does not match ``Upload-Checksum``: 460, as the checksum extension says."""

    status_code = 460


def check_version(header: str | None) -> None:
    if header is None:
        raise UnsupportedVersion("Tus-Resumable header missing: this server speaks tus 1.0.0")
    if header.strip() != VERSION:
        raise UnsupportedVersion(f"tus version {header.strip()!r} is not supported: this server speaks 1.0.0")


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value may be absent).
    Keys must be unique; values must be base64 of UTF-8 text."""
    if header is None or not header.strip():
        return {}
    if len(header) > MAX_METADATA_LENGTH:
        raise InvalidInput(f"Upload-Metadata: longer than {MAX_METADATA_LENGTH} characters")
    pairs: dict[str, str] = {}
    for item in header.split(","):
        parts = item.strip().split(" ")
        if len(parts) > 2 or not parts[0] or not _METADATA_KEY.match(parts[0]):
            raise InvalidInput("Upload-Metadata: each item must be a key, a space and a base64 value")
        key = parts[0]
        if key in pairs:
            raise InvalidInput(f"Upload-Metadata: {key!r} given twice")
        try:
            pairs[key] = base64.b64decode(parts[1], validate=True).decode() if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text") from None
    return pairs


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)


def parse_checksum(header: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``."""
    if header is None:
        return None
    parts = header.strip().split(" ")
    if len(parts) != 2:
        raise InvalidInput("Upload-Checksum: must be an algorithm, a space and a base64 digest")
    algorithm = parts[0].lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidInput(f"Upload-Checksum: {parts[0]!r} is not supported ({', '.join(CHECKSUM_ALGORITHMS)})")
    try:
        digest = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise InvalidInput("Upload-Checksum: the digest is not base64") from None
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise InvalidInput(f"Upload-Checksum: not a {algorithm} digest (wrong length)")
    return Checksum(algorithm, digest)


def check_content_type(header: str | None) -> None:
    if (header or "").split(";")[0].strip().lower() != OFFSET_CONTENT_TYPE:
        raise WrongContentType(f"Content-Type must be {OFFSET_CONTENT_TYPE}")


@dataclass(frozen=True)
class Concat:
    """``Upload-Concat``: a partial upload, or a final one made of the partial uploads named."""

    final: bool
    partial_ids: tuple[str, ...] = ()


def parse_concat(header: str | None) -> Concat | None:
    """``Upload-Concat: partial`` or ``Upload-Concat: final;<url> <url> ...`` (each the URL, absolute or
    just its path, of a partial upload on this server)."""
    if header is None:
        return None
    value = header.strip()
    if value == "partial":
        return Concat(final=False)
    kind, _, urls = value.partition(";")
    if kind.strip() != "final":
        raise InvalidInput("Upload-Concat: must be 'partial' or 'final;' and the partial uploads' URLs")
    ids = []
    for url in urls.split():
        found = _UPLOAD_PATH.search(urlsplit(url).path)
        if found is None:
            raise InvalidInput(f"Upload-Concat: {url[:100]!r} is not the URL of an upload here")
        ids.append(found.group(1))
    if not ids:
        raise InvalidInput("Upload-Concat: a final upload names its partial uploads")
    return Concat(final=True, partial_ids=tuple(ids))
