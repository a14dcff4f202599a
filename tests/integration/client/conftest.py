"""A live server with small chunks, shared by a module's tests, and a personal API token of a new user
for each test."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import API, PASSWORD, LiveServer

CHUNK_SIZE = 4096


@pytest.fixture(scope="module")
def server(small_chunk_server: LiveServer) -> LiveServer:
    """The integration tests' live server with 1 KiB minimum and 4 KiB default chunks."""
    return small_chunk_server


def new_user(server: LiveServer) -> tuple[str, str]:
    """Register a new user through the API, as a browser would; their email and a token with every scope."""
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    with httpx.Client(base_url=server.url) as browser:
        browser.get(f"{API}/auth/me")
        csrf = {"x-csrf-token": browser.cookies["lfusys_csrf"]}
        registered = browser.post(
            f"{API}/auth/register", json={"name": "Ada", "email": email, "password": PASSWORD}, headers=csrf
        )
        assert registered.status_code == 201, registered.text
        assert browser.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD}, headers=csrf).is_success
        made = browser.post(
            f"{API}/tokens", json={"name": "tests", "scopes": ["upload", "read", "delete"]}, headers=csrf
        )
        assert made.status_code == 201, made.text
        return email, str(made.json()["token"])


@pytest.fixture
def token(server: LiveServer) -> str:
    return new_user(server)[1]


def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
