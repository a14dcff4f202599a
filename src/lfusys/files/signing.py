"""Expiring, HMAC-signed download URLs served by the app itself (the local stand-in for S3 presigning)."""

from __future__ import annotations

import hashlib
import hmac


class DownloadSigner:
    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def signature(self, file_id: str, expires: int) -> str:
        message = f"{file_id}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def is_valid(self, file_id: str, expires: int, signature: str) -> bool:
        # compare_digest raises on non-ASCII text; such a signature is simply not ours.
        return signature.isascii() and hmac.compare_digest(self.signature(file_id, expires), signature)
