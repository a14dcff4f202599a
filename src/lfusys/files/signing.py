"""The app's own expiring download links, for backends whose bytes the app serves itself (local, memory).

S3 makes presigned URLs instead; either way a download link is made by the blob store.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlencode


def content_path(file_id: str) -> str:
    """Where the app serves a file's bytes behind a signed link."""
    return f"/api/v1/files/{file_id}/content"


class SignedLinks:
    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def signature(self, file_id: str, expires: int) -> str:
        message = f"{file_id}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, file_id: str, expires_at: datetime) -> str:
        """A relative URL, so it works whatever host and port the client reached the server on."""
        expires = int(expires_at.timestamp())
        query = urlencode({"expires": expires, "signature": self.signature(file_id, expires)})
        return f"{content_path(file_id)}?{query}"

    def is_valid(self, file_id: str, expires: int, signature: str) -> bool:
        # compare_digest raises on non-ASCII text; such a signature is simply not ours.
        return signature.isascii() and hmac.compare_digest(self.signature(file_id, expires), signature)
