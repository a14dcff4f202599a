"""A client of the LFUSYS API for scripts and the ``lfusys`` command line: upload (resumable, checked,
in parallel), list, download and delete files with a personal API token.

It needs httpx and the standard library only, none of the server's packages::

    from lfusys.client import Client

    with Client("https://files.example.com", "lfusys_…") as client:
        info = client.upload("big.iso", concurrency=8)
        client.download(info.id, "copy.iso")
"""

from lfusys.client.api import (
    AsyncClient,
    Client,
    DownloadProgress,
    FileInfo,
    UploadProgress,
    chunk_checksum,
    create_token,
)
from lfusys.client.errors import AuthError, FileChanged, LfusysError, NotFound, ServerError, UploadFailed

__all__ = [
    "AsyncClient",
    "AuthError",
    "Client",
    "DownloadProgress",
    "FileChanged",
    "FileInfo",
    "LfusysError",
    "NotFound",
    "ServerError",
    "UploadFailed",
    "UploadProgress",
    "chunk_checksum",
    "create_token",
]
