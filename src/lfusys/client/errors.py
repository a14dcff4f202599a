"""The client's exceptions: one hierarchy, each with a one-line message."""

from __future__ import annotations


class LfusysError(Exception):
    """Anything the client could not do; ``str(error)`` is one line that says what. ``status`` is the HTTP
    status of the answer that caused it, if there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(LfusysError):
    """The server refused the credentials (401) or the action (403: a missing token scope, say)."""


class NotFound(LfusysError):
    """No such file or upload (404)."""


class FileChanged(LfusysError):
    """The local file no longer matches what its interrupted upload already stored; nothing was sent."""


class UploadFailed(LfusysError):
    """The server gave up on the upload (``failed``, ``cancelled``, ``expired``), or the result did not verify."""


class ServerError(LfusysError):
    """The server kept failing (5xx, 429/503 past every retry) or could not be reached."""
