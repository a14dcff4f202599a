"""What a server under pressure refuses, and how: quota reserved atomically, caps on the chunk
bodies one user and everyone may stream at once, full storage, and a session that ends while a
chunk arrives.

(A disk that really fills up is the local backend's: tests/integration/storage/local/test_disk_full.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from lfusys.auth.records import User
from lfusys.chunks.service import ChunkReceipt
from lfusys.errors import Gone
from lfusys.services import Services, services_from
from lfusys.sessions.schemas import CreateUpload
from lfusys.storage.ports import StorageFull
from tests.conftest import AppFactory
from tests.redis_server import redis_env
from tests.support import (
    API,
    BASE_URL,
    SMALL_CHUNKS,
    AppClient,
    FakeClock,
    LiveServer,
    chunks_of,
    csrf_headers,
    put_chunk,
    register_owner,
    services_of,
    sha256_hex,
    signed_in,
    start_upload,
)

Client = AppClient
DATA = bytes(range(256)) * 48  # 12,288 bytes: three 4 KiB chunks
CHUNKS = chunks_of(DATA, 4096)


def live_server(tmp_path: Path, backend: str, workers: int = 1, **variables: str) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path / "data",
        tmp_path / "server.log",
        backend=backend,
        workers=workers,
        LFUSYS_MIN_CHUNK_SIZE="1024",
        LFUSYS_DEFAULT_CHUNK_SIZE="4096",
        **variables,
    )
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def signed_in_client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=server.url, timeout=20, limits=limits) as client:
        await signed_in(client, f"{uuid.uuid4().hex}@example.com")
        yield client


# --- quota -------------------------------------------------------------------------------------


@pytest.fixture
def quota_server(tmp_path: Path, backend_name: str) -> Iterator[LiveServer]:
    # Two server processes: the starts race in two processes and across the store, not just one loop
    # (the memory backend keeps its data in its one process). Several processes share a Redis, as they
    # must.
    workers = 1 if backend_name == "memory" else 2
    yield from live_server(
        tmp_path, backend_name, workers=workers, LFUSYS_USER_QUOTA_BYTES="10000", **redis_env(tmp_path / "data")
    )


async def test_parallel_starts_against_a_quota_that_fits_one_give_exactly_one_upload(quota_server: LiveServer) -> None:
    async with signed_in_client(quota_server) as client:
        headers = await csrf_headers(client)
        body = {"file_name": "big.bin", "file_type": "", "file_size": 6_000}

        responses = await asyncio.gather(
            *(client.post(f"{API}/uploads", json=body, headers=headers) for _ in range(20))
        )

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [413] * 19
        refused = next(r for r in responses if r.status_code == 413)
        assert refused.json() == {"error": "storage quota exceeded: 4000 of 10000 bytes left"}
        assert len((await client.get(f"{API}/uploads")).json()["uploads"]) == 1


# --- chunk bodies in flight --------------------------------------------------------------------


@pytest.fixture
def capped_server(tmp_path: Path, backend_name: str) -> Iterator[LiveServer]:
    yield from live_server(tmp_path, backend_name, LFUSYS_MAX_CHUNK_PUTS_PER_USER="2")


class HeldBody:
    """A request body that sends its first bytes, then waits until the test lets it finish."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data[:100]
        await self.release.wait()
        yield self.data[100:]


async def held_put(client: httpx.AsyncClient, upload_id: str, n: int, body: HeldBody) -> httpx.Response:
    headers = {**await csrf_headers(client), "x-chunk-hash": sha256_hex(body.data)}
    return await client.put(f"{API}/uploads/{upload_id}/chunks/{n}", content=body, headers=headers)


async def partial_put(
    server: LiveServer, client: httpx.AsyncClient, path: str, chunk: bytes
) -> tuple[int, dict[str, str], bytes]:
    """Send a chunk PUT's headers and its first 100 bytes only, and read whatever the server answers."""
    cookies = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookies}\r\n"
        f"X-CSRF-Token: {client.cookies['lfusys_csrf']}\r\nX-Chunk-Hash: {sha256_hex(chunk)}\r\n"
        f"Content-Length: {len(chunk)}\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head.encode() + chunk[:100])
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in {b"\r\n", b""}:
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers["content-length"]))
    finally:
        writer.close()
    return int(status_line.split()[1]), headers, body


async def test_chunks_beyond_a_users_cap_are_refused_with_retry_after_before_their_body_is_read(
    capped_server: LiveServer,
) -> None:
    async with signed_in_client(capped_server) as client:
        upload_id = (await start_upload(client, len(DATA))).json()["upload_id"]
        held = [HeldBody(CHUNKS[0]), HeldBody(CHUNKS[1])]
        in_flight = [
            asyncio.create_task(held_put(client, upload_id, n, body)) for n, body in ((1, held[0]), (2, held[1]))
        ]
        await asyncio.sleep(0.5)  # both bodies are streaming

        # The third chunk announces its 4096 bytes but sends only 100: the answer must come anyway.
        status, headers, body = await partial_put(
            capped_server, client, f"{API}/uploads/{upload_id}/chunks/3", CHUNKS[2]
        )

        assert status == 429
        assert headers["retry-after"] == "1"
        assert "too many chunk uploads at once" in json.loads(body)["error"]
        for held_body in held:
            held_body.release.set()
        assert [r.status_code for r in await asyncio.gather(*in_flight)] == [200, 200]
        assert (await client.get(f"{API}/uploads/{upload_id}/chunks")).json()["chunks"] == [1, 2]
        assert (await put_chunk(client, upload_id, 3, CHUNKS[2])).status_code == 200


async def test_the_cap_is_per_user(capped_server: LiveServer) -> None:
    async with signed_in_client(capped_server) as ada, signed_in_client(capped_server) as bob:
        ada_upload = (await start_upload(ada, len(DATA))).json()["upload_id"]
        bob_upload = (await start_upload(bob, len(DATA))).json()["upload_id"]
        held = [HeldBody(CHUNKS[0]), HeldBody(CHUNKS[1])]
        in_flight = [asyncio.create_task(held_put(ada, ada_upload, n, b)) for n, b in enumerate(held, start=1)]
        await asyncio.sleep(0.5)

        response = await put_chunk(bob, bob_upload, 1, CHUNKS[0])

        assert response.status_code == 200
        for body in held:
            body.release.set()
        await asyncio.gather(*in_flight)


@pytest.fixture
def busy_server(tmp_path: Path, backend_name: str) -> Iterator[LiveServer]:
    # Three places: two for users already sending, the last kept for users with nothing in flight.
    yield from live_server(tmp_path, backend_name, LFUSYS_MAX_CHUNK_PUTS="3")


async def test_chunks_beyond_the_servers_limit_are_refused_with_retry_after_before_their_body_is_read(
    busy_server: LiveServer,
) -> None:
    async with (
        signed_in_client(busy_server) as ada,
        signed_in_client(busy_server) as bob,
        signed_in_client(busy_server) as cy,
    ):
        uploads = {}
        for name, client in (("ada", ada), ("bob", bob), ("cy", cy)):
            uploads[name] = (await start_upload(client, len(DATA))).json()["upload_id"]
        held = [HeldBody(CHUNKS[0]), HeldBody(CHUNKS[1])]
        in_flight = [asyncio.create_task(held_put(ada, uploads["ada"], n, b)) for n, b in enumerate(held, start=1)]
        await asyncio.sleep(0.5)  # ada has two bodies streaming: all a user already sending may have

        status, headers, body = await partial_put(
            busy_server, ada, f"{API}/uploads/{uploads['ada']}/chunks/3", CHUNKS[2]
        )
        assert (status, headers["retry-after"]) == (503, "1")
        assert json.loads(body) == {"error": "the server is receiving as many chunks as it can; try again shortly"}

        # bob has nothing in flight: the last place is his.
        bobs = HeldBody(CHUNKS[0])
        bob_put = asyncio.create_task(held_put(bob, uploads["bob"], 1, bobs))
        await asyncio.sleep(0.5)
        # Every place is taken now, even for a newcomer.
        status, headers, _ = await partial_put(busy_server, cy, f"{API}/uploads/{uploads['cy']}/chunks/1", CHUNKS[0])
        assert (status, headers["retry-after"]) == (503, "1")

        for held_body in (*held, bobs):
            held_body.release.set()
        assert [r.status_code for r in await asyncio.gather(*in_flight, bob_put)] == [200, 200, 200]
        # Nothing of the refused bodies was kept; sent again, they go through.
        assert (await ada.get(f"{API}/uploads/{uploads['ada']}/chunks")).json()["chunks"] == [1, 2]
        assert (await cy.get(f"{API}/uploads/{uploads['cy']}/chunks")).json()["chunks"] == []
        assert (await put_chunk(ada, uploads["ada"], 3, CHUNKS[2])).status_code == 200
        assert (await put_chunk(cy, uploads["cy"], 1, CHUNKS[0])).status_code == 200


# --- a session that ends while a chunk arrives ---------------------------------------------------


async def test_a_chunk_still_streaming_when_its_upload_is_cancelled_is_gone_and_not_kept(
    capped_server: LiveServer,
) -> None:
    async with signed_in_client(capped_server) as client:
        upload_id = (await start_upload(client, len(DATA))).json()["upload_id"]
        body = HeldBody(CHUNKS[0])
        put = asyncio.create_task(held_put(client, upload_id, 1, body))
        await asyncio.sleep(0.3)

        cancelled = await client.delete(f"{API}/uploads/{upload_id}", headers=await csrf_headers(client))
        body.release.set()
        response = await put

        assert cancelled.status_code == 204
        assert response.status_code == 410
        assert response.json() == {"error": "upload was cancelled"}
        assert (await client.get(f"{API}/uploads/{upload_id}/chunks")).json()["chunks"] == []


async def held_pieces(first: bytes, gate: asyncio.Event, rest: bytes) -> AsyncIterator[bytes]:
    yield first
    await gate.wait()
    yield rest


async def receiving_chunk_1(
    services: Services, owner: User, upload_id: str, gate: asyncio.Event
) -> asyncio.Task[ChunkReceipt]:
    """Chunk 1 on its way in: its first 100 bytes have arrived, the rest wait for ``gate``."""
    receiving = asyncio.create_task(
        services.ingress.receive(
            owner,
            upload_id,
            1,
            sha256=sha256_hex(CHUNKS[0]),
            content_length=len(CHUNKS[0]),
            body=held_pieces(CHUNKS[0][:100], gate, CHUNKS[0][100:]),
        )
    )
    await asyncio.sleep(0.1)
    return receiving


def _create(size: int) -> CreateUpload:
    return CreateUpload(file_name="data.bin", file_type="", file_size=size)


@pytest.fixture
async def services(app_factory: AppFactory) -> AsyncIterator[Services]:
    app = app_factory(**SMALL_CHUNKS)
    async with AppClient(app, base_url=BASE_URL):
        yield services_from(app.state)


async def test_a_chunk_still_streaming_when_its_upload_expires_is_gone_and_not_kept(
    services: Services, clock: FakeClock
) -> None:
    owner = await register_owner(services)
    session = await services.sessions.start(owner, _create(len(DATA)))
    gate = asyncio.Event()
    receiving = await receiving_chunk_1(services, owner, session.id, gate)

    clock.advance(services.settings.uploads.upload_ttl + timedelta(seconds=1))
    gate.set()

    with pytest.raises(Gone, match="expired"):
        await receiving
    assert await services.backend.blobs.list_chunks(session.id) == []


async def test_a_chunk_still_streaming_when_its_upload_is_cleaned_up_is_gone(services: Services) -> None:
    owner = await register_owner(services)
    session = await services.sessions.start(owner, _create(len(DATA)))
    gate = asyncio.Event()
    receiving = await receiving_chunk_1(services, owner, session.id, gate)

    await services.sessions.cancel(owner, session.id)
    await services.janitor.sweep()  # deletes the upload's folder, with the chunk's temporary file in it
    gate.set()

    with pytest.raises(Gone, match="cancelled"):
        await receiving
    assert await services.backend.blobs.list_chunks(session.id) == []


# --- full storage --------------------------------------------------------------------------------


async def test_storage_that_fills_mid_chunk_is_507_and_nothing_else_is_harmed(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = (await start_upload(client, len(DATA))).json()["upload_id"]
    assert (await put_chunk(client, upload_id, 1, CHUNKS[0])).status_code == 200
    blobs = services_of(client).backend.blobs
    put = blobs.put_chunk

    async def full_after_a_while(
        upload_id: str, n: int, body: AsyncIterator[bytes], size: int, sha256: str, *, digest_known: bool = False
    ) -> bool:
        async for _ in body:  # some of the body arrives, then there is no room for it
            raise StorageFull
        raise AssertionError("the body was empty")

    monkeypatch.setattr(blobs, "put_chunk", full_after_a_while)
    full = await put_chunk(client, upload_id, 2, CHUNKS[1])
    monkeypatch.setattr(blobs, "put_chunk", put)

    assert full.status_code == 507
    assert full.json() == {"error": "the server has run out of storage space; try again later"}
    assert await blobs.list_chunks(upload_id) == [1]
    assert (await client.get(f"{API}/uploads/{upload_id}/chunks")).json()["chunks"] == [1]
    assert (await client.get(f"{API}/uploads/{upload_id}")).json()["status"] in {"pending", "in_progress"}
    # Room again: the same chunk goes through.
    assert (await put_chunk(client, upload_id, 2, CHUNKS[1])).status_code == 200
    assert (await put_chunk(client, upload_id, 3, CHUNKS[2])).status_code == 200
