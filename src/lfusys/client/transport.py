"""A lean HTTP/1.1 transport for httpx, for sending chunks.

httpx's default transport (httpcore on anyio) costs about a third more client CPU per byte uploaded
than the socket itself, and on a machine that also hashes every chunk that CPU is the upload's speed.
This transport frames requests and reads responses with h11 (the HTTP/1.1 engine httpx uses) on a
plain asyncio connection, and hands each piece of a request body to the socket as it is: a view of
the caller's buffer is never copied here (nor by uvloop's sockets). An answer the server sent before
refusing the rest of the body (a 401 or 413, then a reset) is still read.

Each response is read whole: this is meant for uploads, whose answers are small. Connections are
kept alive and reused; a kept-alive connection the server closed while it was idle is replaced, and
the request sent again, only when nothing of the answer had arrived (and it did not time out).

Errors are httpx's (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError`` …), so a client's retry
logic treats both transports alike. Proxies are not supported: use the default transport with them.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import cast

import h11
import httpx

_Origin = tuple[str, str, int]


class _Socket(asyncio.Protocol):
    """One connection's bytes: what arrived is kept until read, even after the connection was lost
    (asyncio's stream reader would raise the error first and drop an answer that came before it)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received = bytearray()
        self.lost = False
        self.error: Exception | None = None
        self._arrived = asyncio.Event()
        self.gone = asyncio.Event()
        """Set once the socket is closed."""
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one, without the base class

    def data_received(self, data: bytes) -> None:
        self.received += data
        self._arrived.set()

    def eof_received(self) -> None:
        self.lost = True
        self._arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.error = exc
        self._arrived.set()
        self._writable.set()
        self.gone.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        if self.lost:
            raise ConnectionResetError(f"the connection is closed ({self.error or 'by the server'})")
        self.transport.write(data)

    async def drain(self) -> None:
        await self._writable.wait()
        if self.error is not None:
            raise self.error

    async def read(self) -> bytes:
        """What has arrived, waiting for something; ``b""`` once the connection is closed."""
        while not self.received and not self.lost:
            self._arrived.clear()
            await self._arrived.wait()
        data = bytes(self.received)
        self.received.clear()
        return data

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Connection:
    def __init__(self, socket: _Socket) -> None:
        self.socket = socket
        self.h11 = h11.Connection(h11.CLIENT)
        self.received_any = False
        """Whether any byte of the current answer has arrived."""

    def close(self) -> None:
        self.socket.close()

    @property
    def reusable(self) -> bool:
        return self.h11.our_state is h11.IDLE and self.h11.their_state is h11.IDLE and not self.socket.lost

    async def exchange(self, request: httpx.Request, timeouts: dict[str, float | None]) -> httpx.Response:
        """Send ``request`` and read its whole answer. Each write and each read has the request's
        write or read timeout, as with httpx's own transport."""
        self.received_any = False
        assert isinstance(request.stream, httpx.AsyncByteStream)
        head = h11.Request(method=request.method, target=request.url.raw_path, headers=list(request.headers.raw))
        write_timeout = timeouts.get("write")
        try:
            self.socket.write(self.h11.send(head) or b"")
            async for piece in request.stream:
                for part in self.h11.send_with_data_passthrough(h11.Data(data=piece)) or ():
                    self.socket.write(part)
                async with asyncio.timeout(write_timeout):
                    await self.socket.drain()
            self.socket.write(self.h11.send(h11.EndOfMessage()) or b"")
            async with asyncio.timeout(write_timeout):
                await self.socket.drain()
        except OSError as exc:
            # The server may have answered early (a refusal before reading the body) and closed.
            early = await self._early_answer(request, timeouts)
            if early is None:
                raise httpx.WriteError(f"sending the request failed: {exc}", request=request) from exc
            return early
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        return await self._answer(request, timeouts)

    async def _early_answer(self, request: httpx.Request, timeouts: dict[str, float | None]) -> httpx.Response | None:
        try:
            return await self._answer(request, timeouts)
        except httpx.TransportError:
            return None

    async def _answer(self, request: httpx.Request, timeouts: dict[str, float | None]) -> httpx.Response:
        status: h11.Response | None = None
        body: list[bytes] = []
        read_timeout = timeouts.get("read")
        try:
            while True:
                event = self.h11.next_event()
                if event is h11.NEED_DATA:
                    async with asyncio.timeout(read_timeout):
                        data = await self.socket.read()
                    self.received_any = self.received_any or bool(data)
                    self.h11.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event
                elif isinstance(event, h11.Data):
                    body.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise httpx.RemoteProtocolError("the server closed the connection without answering")
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request) from None
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(f"a malformed answer: {exc}", request=request) from exc
        except OSError as exc:
            raise httpx.ReadError(f"reading the answer failed: {exc}", request=request) from exc
        assert status is not None  # h11 gives a Response before any EndOfMessage
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return httpx.Response(status.status_code, headers=list(status.headers), content=b"".join(body), request=request)


class ChunkTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 on asyncio connections, for ``http`` and ``https`` (verified with httpx's default
    certificate store unless ``ssl_context`` is given). Keeps up to ``max_idle`` connections open."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, max_idle: int = 16) -> None:
        self._ssl_context = ssl_context
        self._max_idle = max_idle
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._open: set[_Socket] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = (request.url.scheme, request.url.host, request.url.port or _default_port(request.url.scheme))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        idle = self._idle.setdefault(origin, [])
        while idle:
            connection = idle.pop()
            if not connection.reusable:
                connection.close()
                continue
            try:
                return await self._exchange(origin, connection, request, timeouts)
            except httpx.TransportError as exc:
                if connection.received_any or isinstance(exc, httpx.TimeoutException):
                    raise
                # Closed by the server while idle: nothing was handled, so send it anew.
        connection = await self._connect(request, origin, timeouts)
        return await self._exchange(origin, connection, request, timeouts)

    async def _exchange(
        self, origin: _Origin, connection: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        """``request`` on ``connection``, which is kept for the next request if it can be, else closed
        (also when the exchange fails)."""
        try:
            response = await connection.exchange(request, timeouts)
        except BaseException:
            connection.close()
            raise
        return self._done(origin, connection, response)

    def _done(self, origin: _Origin, connection: _Connection, response: httpx.Response) -> httpx.Response:
        idle = self._idle.setdefault(origin, [])
        if connection.reusable and len(idle) < self._max_idle:
            idle.append(connection)
        else:
            connection.close()
        return response

    async def _connect(self, request: httpx.Request, origin: _Origin, timeouts: dict[str, float | None]) -> _Connection:
        scheme, host, port = origin
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"cannot send to {scheme}: URLs", request=request)
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            context = self._ssl_context
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                _, socket = await asyncio.get_running_loop().create_connection(
                    _Socket, host, port, ssl=context, server_hostname=host if context else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}", request=request) from exc
        self._open = {open_socket for open_socket in self._open if not open_socket.gone.is_set()}
        self._open.add(socket)
        return _Connection(socket)

    async def aclose(self) -> None:
        """Close every connection, and wait (a second at most) until their sockets are closed."""
        self._idle.clear()
        sockets = [socket for socket in self._open if not socket.gone.is_set()]
        self._open.clear()
        for socket in sockets:
            socket.close()
        if sockets:
            await asyncio.wait([asyncio.ensure_future(socket.gone.wait()) for socket in sockets], timeout=1.0)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
