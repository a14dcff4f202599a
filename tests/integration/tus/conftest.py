"""The tus client tests' live server (small chunks, one per module and backend), and how they read back
what a tus upload became."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support import API, LiveServer


@pytest.fixture(scope="module")
def server(small_chunk_server: LiveServer) -> LiveServer:
    return small_chunk_server


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
