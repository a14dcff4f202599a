"""Upload a file through a running LFUSYS and download it again: the check scripts/check-image runs
against the container it started.

    .venv/bin/python scripts/image_smoke.py http://127.0.0.1:8000

Registers an account, signs in, starts an upload of a few chunks, sends each with its SHA-256, waits
for ``completed``, downloads the file through its signed link and compares the bytes and the checksum.
Prints one line per step; exits non-zero (with the reason) on any failure.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

API = "/api/v1"
CHUNK_SIZE = 5 * 1024 * 1024  # the smallest chunk size the server accepts by default
FILE_SIZE = 2 * CHUNK_SIZE + 123_457  # three chunks, the last a short one
PATIENCE = 60.0


class SmokeError(Exception):
    """A step answered something other than what it should."""


def expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise SmokeError(f"{what}: expected {status}, got {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else None


def csrf(client: httpx.Client) -> dict[str, str]:
    """The header a browser page sends back (any GET under the API hands out the cookie)."""
    if "lfusys_csrf" not in client.cookies:
        client.get(f"{API}/auth/me")
    return {"x-csrf-token": client.cookies["lfusys_csrf"]}


def checksum(chunks: list[bytes]) -> str:
    """The file's checksum as README describes it: SHA-256 over the chunks' raw SHA-256 digests."""
    outer = hashlib.sha256()
    for chunk in chunks:
        outer.update(hashlib.sha256(chunk).digest())
    return outer.hexdigest()


def smoke(base_url: str) -> None:
    data = os.urandom(FILE_SIZE)
    email = f"smoke-{uuid.uuid4().hex[:12]}@example.com"
    password = secrets.token_urlsafe(16)
    # trust_env=False: no proxy from the environment between us and the loopback server.
    with httpx.Client(base_url=base_url, timeout=30, trust_env=False) as client:
        expect(client.get("/health/ready"), 200, "GET /health/ready")
        print(f"image_smoke: ready at {base_url}")

        account = {"name": "Smoke", "email": email, "password": password}
        expect(client.post(f"{API}/auth/register", json=account, headers=csrf(client)), 201, "register")
        credentials = {"email": email, "password": password}
        expect(client.post(f"{API}/auth/login", json=credentials, headers=csrf(client)), 200, "login")
        me = expect(client.get(f"{API}/auth/me"), 200, "GET /auth/me")
        print(f"image_smoke: registered and signed in as {me['email']}")

        body: dict[str, Any] = {
            "file_name": "smoke.bin",
            "file_type": "application/octet-stream",
            "file_size": FILE_SIZE,
            "chunk_size": CHUNK_SIZE,
        }
        upload = expect(client.post(f"{API}/uploads", json=body, headers=csrf(client)), 201, "start the upload")
        upload_id, chunk_size = upload["upload_id"], upload["chunk_size"]
        chunks = [data[i : i + chunk_size] for i in range(0, FILE_SIZE, chunk_size)]
        if upload["total_chunks"] != len(chunks):
            raise SmokeError(f"expected {len(chunks)} chunks, the server says {upload['total_chunks']}")

        # Last chunk first: chunks may come in any order.
        for n in reversed(range(1, len(chunks) + 1)):
            chunk = chunks[n - 1]
            headers = {**csrf(client), "x-chunk-hash": hashlib.sha256(chunk).hexdigest()}
            stored = expect(
                client.put(f"{API}/uploads/{upload_id}/chunks/{n}", content=chunk, headers=headers),
                200,
                f"PUT chunk {n}",
            )
            if stored["sha256"] != headers["x-chunk-hash"] or stored["size"] != len(chunk):
                raise SmokeError(f"chunk {n} stored as {stored}")
        print(f"image_smoke: sent {len(chunks)} chunks of {chunk_size} bytes ({FILE_SIZE} bytes)")

        deadline = time.monotonic() + PATIENCE
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = expect(client.get(f"{API}/uploads/{upload_id}"), 200, "GET the upload")
            if state["status"] in {"completed", "failed", "cancelled", "expired"}:
                break
            time.sleep(0.1)
        if state.get("status") != "completed":
            raise SmokeError(f"the upload did not complete: {state}")
        file_id = state["file_id"]
        print(f"image_smoke: upload completed as file {file_id}")

        meta = expect(client.get(f"{API}/files/{file_id}"), 200, "GET the file")
        if meta["size"] != FILE_SIZE or meta["checksum"] != checksum(chunks):
            raise SmokeError(f"file metadata does not match what was sent: {meta}")

        link = expect(client.get(f"{API}/files/{file_id}/download"), 200, "GET the download link")
        url = link["url"]
        if urlsplit(url).netloc:  # a link to another host (S3): fetch it from there, without our cookies
            with httpx.Client(timeout=60, trust_env=False) as storage:
                downloaded = storage.get(url)
        else:
            downloaded = client.get(url)
        if downloaded.status_code != 200:
            raise SmokeError(f"download: {downloaded.status_code}: {downloaded.text[:500]}")
        if downloaded.content != data:
            raise SmokeError(f"downloaded {len(downloaded.content)} bytes that differ from the {FILE_SIZE} sent")
        print(f"image_smoke: downloaded {len(downloaded.content)} bytes, identical to those uploaded")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: image_smoke.py BASE_URL", file=sys.stderr)
        return 2
    try:
        smoke(argv[1].rstrip("/"))
    except (SmokeError, httpx.HTTPError) as error:
        print(f"image_smoke: FAILED: {error}", file=sys.stderr)
        return 1
    print("image_smoke: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
