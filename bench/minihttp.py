"""A minimal asyncio HTTP/1.1 client, just enough to drive the upload benchmark.

Why not httpx or aiohttp: the benchmark client and the server under test share the machine's two
cores, so every CPU cycle the client spends is taken from the server and lowers its figure. This
client does nearly nothing per byte: the request head is one small write, the body is read from the
test file with ``os.pread`` in 1 MiB pieces and handed straight to the transport (``write`` +
``drain``), and a response is a status line, headers and a ``Content-Length`` body. One keep-alive
connection serves one concurrent request slot. Cookies are kept by hand in :class:`Session`.

Not supported, because neither server under test needs it: TLS, chunked responses, redirects,
compression, pipelining.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

PIECE = 1024 * 1024
"""Bytes read from the file and written to the socket at a time."""


class HttpError(RuntimeError):
    """The server answered with an unexpected status, or the connection broke."""


@dataclass(frozen=True)
class FileSlice:
    """``length`` bytes of an open file from ``offset``: a request body that is never held whole."""

    fd: int
    offset: int
    length: int


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    """Names in lower case, in the order received (``set-cookie`` may repeat)."""
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Session:
    """Cookies and the CSRF header shared by every connection to one server."""

    cookies: dict[str, str] = field(default_factory=dict)
    csrf_cookie: str = "lfusys_csrf"

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if self.csrf_cookie in self.cookies:
            headers["X-CSRF-Token"] = self.cookies[self.csrf_cookie]
        return headers

    def absorb(self, response: Response) -> None:
        """Keep (or drop) the cookies the response sets; attributes other than Max-Age are ignored."""
        for key, value in response.headers:
            if key != "set-cookie":
                continue
            pair, *attributes = value.split(";")
            name, _, cookie = pair.strip().partition("=")
            expired = any(attribute.strip().lower() == "max-age=0" for attribute in attributes)
            if expired or not cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it are sent one after another."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Connect now (otherwise the first request does), e.g. before a clock starts."""
        if self._reader is not None and self._reader.at_eof():
            await self.close()  # the server closed it while idle
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            writer, self._reader, self._writer = self._writer, None, None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes | FileSlice = b""
    ) -> Response:
        """Send one request and read its response, on this connection if it is still open.

        A kept-alive connection may have been closed by the server while idle (uvicorn closes them
        after 5 s) without this side noticing yet. If a reused connection fails before any byte of
        the response arrived, the server never handled the request, so it is sent once more on a
        new connection, as browsers do.
        """
        reused = self._writer is not None
        try:
            return await self._exchange(method, path, headers or {}, body)
        except (OSError, asyncio.IncompleteReadError) as exc:
            await self.close()
            if reused and _nothing_received(exc):
                return await self.request(method, path, headers=headers, body=body)
            raise HttpError(f"{method} {path}: connection failed: {exc!r}") from exc

    async def _exchange(self, method: str, path: str, headers: dict[str, str], body: bytes | FileSlice) -> Response:
        await self.open()
        reader, writer = self._reader, self._writer
        assert reader is not None
        assert writer is not None
        length = body.length if isinstance(body, FileSlice) else len(body)
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {length}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await _send_body(writer, body)
        response = await read_response(reader)
        if (response.header("connection") or "").lower() == "close":
            await self.close()
        return response


def _nothing_received(exc: BaseException) -> bool:
    if isinstance(exc, asyncio.IncompleteReadError):
        return not exc.partial
    return isinstance(exc, ConnectionResetError | BrokenPipeError)


async def _send_body(writer: asyncio.StreamWriter, body: bytes | FileSlice) -> None:
    if not isinstance(body, FileSlice):
        if body:
            writer.write(body)
        await writer.drain()
        return
    for start in range(0, body.length, PIECE):
        piece = os.pread(body.fd, min(PIECE, body.length - start), body.offset + start)
        writer.write(memoryview(piece))
        await writer.drain()


async def read_response(reader: asyncio.StreamReader) -> Response:
    """Read one response (status line, headers, ``Content-Length`` body) from ``reader``."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    response = Response(status, headers, b"")
    if response.header("transfer-encoding"):
        raise HttpError(f"unsupported response: Transfer-Encoding {response.header('transfer-encoding')}")
    response.body = await reader.readexactly(int(response.header("content-length") or 0))
    return response
