"""The tus tests' servers: an app in this process with a signed-in client (and a script's token), or a
live server for the tus clients (small chunks, one per module and backend); and how they read back what a
tus upload became."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import AppFactory
from tests.support import API, BASE_URL, SMALL_CHUNKS, AppClient, LiveServer, csrf_headers, signed_in


@pytest.fixture(scope="module")
def server(small_chunk_server: LiveServer) -> LiveServer:
    return small_chunk_server


@pytest.fixture
async def client(app_factory: AppFactory) -> AsyncIterator[AppClient]:
    """A signed-in client of an app (in this process) with small chunks."""
    async with AppClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL) as c:
        await signed_in(c)
        yield c


@pytest.fixture
async def bearer(client: AppClient) -> dict[str, str]:
    """The headers of a script: a personal API token with the upload and read scopes, and tus's version."""
    return {**await token_headers(client, ["upload", "read"]), "tus-resumable": "1.0.0"}


async def token_headers(client: AppClient, scopes: list[str]) -> dict[str, str]:
    """``Authorization`` with a new personal API token of ``client``'s user, with ``scopes``."""
    made = await client.post(
        f"{API}/tokens", json={"name": "tus", "scopes": scopes}, headers=await csrf_headers(client)
    )
    assert made.status_code == 201, made.text
    return {"authorization": f"Bearer {made.json()['token']}"}


def downloaded(server: LiveServer, token: str, url: str) -> tuple[dict[str, object], bytes]:
    """The file the tus upload at ``url`` became (waiting for it), and its bytes."""
    upload_id = url.rstrip("/").rsplit("/", 1)[1]
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=20) as api:
        deadline = time.monotonic() + 20
        while (state := api.get(f"{API}/uploads/{upload_id}").json())["status"] != "completed":
            assert state["status"] in ("pending", "in_progress", "finalizing"), state
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        info = api.get(f"{API}/files/{state['file_id']}").json()
        link = api.get(f"{API}/files/{state['file_id']}/download").json()["url"]
        return info, api.get(link).content
