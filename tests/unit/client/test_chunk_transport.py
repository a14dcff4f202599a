"""ChunkTransport against a scripted HTTP/1.1 server on 127.0.0.1: bodies arrive byte for byte, kept-alive
connections are reused, a connection the server closed while idle is replaced without losing or
repeating a request, early refusals are read, and every failure is the httpx error a retry loop expects."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lfusys.client.transport import ChunkTransport

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Behaviour = Callable[[Reader, Writer, "Server"], Awaitable[None]]


class Server:
    """Each accepted connection is handled by ``behaviour``; requests and connections are counted."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.bodies: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=ssl_context)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: Reader, writer: Writer) -> None:
        self.connections += 1
        try:
            await self.behaviour(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: Reader) -> tuple[str, dict[str, str], bytes]:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in head[1:])}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.bodies.append(body)
        return head[0], headers, body

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def answer(status: int, body: bytes = b"{}", *extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", "content-type: application/json", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def keep_answering(reader: Reader, writer: Writer, server: Server) -> None:
    while True:
        _, headers, body = await server.read_request(reader)
        writer.write(answer(200, f'{{"got": {len(body)}, "hash": "{headers.get("x-chunk-hash", "")}"}}'.encode()))
        await writer.drain()


async def answer_once_then_close(reader: Reader, writer: Writer, server: Server) -> None:
    await server.read_request(reader)
    writer.write(answer(200))
    await writer.drain()
    # Closed without saying so: the client only finds out when it uses the connection again.


@asynccontextmanager
async def running(behaviour: Behaviour) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    server = Server(behaviour)
    port = await server.start()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", transport=ChunkTransport(), timeout=5)
    try:
        yield server, client
    finally:
        await client.aclose()
        await server.close()


class Body:
    """A view of a buffer, sent as it is (what the upload sends)."""

    def __init__(self, data: memoryview) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data  # type: ignore[misc]


async def put(client: httpx.AsyncClient, data: bytes | bytearray | memoryview) -> httpx.Response:
    view = memoryview(data)
    return await client.put(
        "/chunks/1", content=Body(view), headers={"content-length": str(len(view)), "x-chunk-hash": "abc"}
    )


async def test_a_body_arrives_byte_for_byte_and_the_connection_is_kept_alive() -> None:
    buffer = bytearray(range(256)) * 8192  # 2 MiB, larger than any socket buffer takes at once
    async with running(keep_answering) as (server, client):
        first = await put(client, memoryview(buffer)[:1_500_000])
        second = await put(client, buffer)
        empty = await client.get("/health")

    assert first.status_code == second.status_code == empty.status_code == 200
    assert first.json() == {"got": 1_500_000, "hash": "abc"}
    assert server.bodies == [bytes(buffer[:1_500_000]), bytes(buffer), b""]
    assert server.connections == 1


async def test_a_connection_closed_while_idle_is_replaced_and_the_request_handled_once() -> None:
    async with running(answer_once_then_close) as (server, client):
        assert (await put(client, b"one")).status_code == 200
        await asyncio.sleep(0.05)  # the server has closed it by now
        assert (await put(client, b"two")).status_code == 200

    assert server.bodies == [b"one", b"two"]
    assert server.connections == 2


async def test_connection_close_in_the_answer_is_honoured() -> None:
    async def close_after_each(reader: Reader, writer: Writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(answer(200, b"{}", "connection: close"))
        await writer.drain()

    async with running(close_after_each) as (server, client):
        for body in (b"a", b"b", b"c"):
            assert (await put(client, body)).status_code == 200

    assert server.connections == 3


async def test_an_early_refusal_is_the_answer_not_a_write_error() -> None:
    async def refuse_before_reading(reader: Reader, writer: Writer, server: Server) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(413, b'{"error": "too large"}', "connection: close"))
        writer.write_eof()
        await asyncio.sleep(0.2)  # the client's writes fill the buffers, unread
        writer.transport.abort()  # and now fail

    async with running(refuse_before_reading) as (_server, client):
        response = await put(client, bytes(8 << 20))

    assert response.status_code == 413
    assert response.json() == {"error": "too large"}


async def test_a_chunked_answer_is_read() -> None:
    async def chunked(reader: Reader, writer: Writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{"a\r\n5\r\n": 1}\r\n0\r\n\r\n')
        await writer.drain()
        await reader.read()

    async with running(chunked) as (_server, client):
        response = await put(client, b"x")

    assert response.json() == {"a": 1}


async def test_an_answer_cut_off_midway_is_an_error_and_not_sent_again() -> None:
    async def cut(reader: Reader, writer: Writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial')
        await writer.drain()

    async with running(cut) as (server, client):
        with pytest.raises(httpx.RemoteProtocolError):
            await put(client, b"x")

    assert server.connections == 1


async def test_a_dead_kept_alive_connection_that_had_started_answering_is_not_retried() -> None:
    async def answer_then_cut(reader: Reader, writer: Writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(answer(200))
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{")
        await writer.drain()

    async with running(answer_then_cut) as (server, client):
        assert (await put(client, b"one")).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            await put(client, b"two")

    assert server.bodies == [b"one", b"two"]
    assert server.connections == 1


async def test_a_silent_server_is_a_read_timeout_and_not_sent_again() -> None:
    async def silent(reader: Reader, writer: Writer, server: Server) -> None:
        await server.read_request(reader)
        await asyncio.sleep(5)

    server = Server(silent)
    port = await server.start()
    async with httpx.AsyncClient(transport=ChunkTransport(), timeout=httpx.Timeout(5, read=0.2)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.put(f"http://127.0.0.1:{port}/x", content=b"x")
    await server.close()

    assert server.connections == 1


async def test_nobody_listening_is_a_connect_error() -> None:
    server = Server(keep_answering)
    port = await server.start()
    await server.close()
    async with httpx.AsyncClient(transport=ChunkTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.put(f"http://127.0.0.1:{port}/x", content=b"x")


async def test_only_http_and_https() -> None:
    async with httpx.AsyncClient(transport=ChunkTransport()) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.send(httpx.Request("PUT", "ftp://127.0.0.1/x", content=b"x"))


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_https_is_verified(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server = Server(keep_answering)
    port = await server.start(server_context)
    trusting = ssl.create_default_context(cafile=str(cert))
    try:
        async with httpx.AsyncClient(transport=ChunkTransport(ssl_context=trusting)) as client:
            response = await client.put(f"https://127.0.0.1:{port}/x", content=b"secret bytes")
        async with httpx.AsyncClient(transport=ChunkTransport()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.put(f"https://127.0.0.1:{port}/x", content=b"secret bytes")
    finally:
        await server.close()

    assert response.json()["got"] == len(b"secret bytes")
    assert server.bodies == [b"secret bytes"]
