"""The client's HTTP behaviour without a server (httpx.MockTransport): what it retries, how long it
waits, what it never retries, the errors it raises; and that importing it loads none of the server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from lfusys.client import AsyncClient, AuthError, LfusysError, NotFound, ServerError

Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """Answers in turn (an exception instance is raised instead), recording every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_of(script: Script, delays: list[float], retries: int = 8) -> AsyncClient:
    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    return AsyncClient(
        "http://lfusys.test", "lfusys_x", transport=httpx.MockTransport(script), sleep=sleep, retries=retries
    )


ME = httpx.Response(200, json={"id": "u1", "email": "ada@example.com", "name": "Ada", "providers": []})


async def test_429_with_retry_after_503_a_connection_error_then_success() -> None:
    script = Script(
        httpx.Response(429, headers={"retry-after": "7"}, json={"error": "too many requests"}),
        httpx.Response(503, json={"error": "busy"}),
        httpx.ConnectError("connection refused"),
        httpx.Response(500, json={"error": "oops"}),
        ME,
    )
    delays: list[float] = []

    async with client_of(script, delays) as client:
        me = await client.me()

    assert me["email"] == "ada@example.com"
    assert len(script.requests) == 5
    assert delays[0] == 7.0  # Retry-After honoured
    # Exponential backoff with jitter: between half and all of 0.5 * 2**attempt.
    assert 0.5 <= delays[1] <= 1.0
    assert 1.0 <= delays[2] <= 2.0
    assert 2.0 <= delays[3] <= 4.0
    assert all(request.headers["authorization"] == "Bearer lfusys_x" for request in script.requests)


async def test_a_read_timeout_is_retried() -> None:
    script = Script(httpx.ReadTimeout("slow"), ME)

    async with client_of(script, []) as client:
        await client.me()

    assert len(script.requests) == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, LfusysError), (401, AuthError), (403, AuthError), (404, NotFound), (409, LfusysError), (422, LfusysError)],
)
async def test_a_4xx_is_not_retried_and_says_the_servers_message(status: int, kind: type[LfusysError]) -> None:
    script = Script(httpx.Response(status, json={"error": "file_size: expected an integer"}))
    delays: list[float] = []

    async with client_of(script, delays) as client:
        with pytest.raises(kind) as raised:
            await client.me()

    assert len(script.requests) == 1
    assert delays == []
    assert str(raised.value) == f"file_size: expected an integer (HTTP {status})"
    assert raised.value.status == status


async def test_408_is_retried() -> None:
    script = Script(httpx.Response(408), ME)

    async with client_of(script, []) as client:
        await client.me()

    assert len(script.requests) == 2


async def test_retries_run_out_in_a_server_error() -> None:
    script = Script(*[httpx.Response(503, json={"error": "busy"})] * 3)

    async with client_of(script, [], retries=2) as client:
        with pytest.raises(ServerError, match=r"busy \(HTTP 503\)"):
            await client.me()

    assert len(script.requests) == 3


async def test_an_unreachable_server_is_one_line() -> None:
    script = Script(*[httpx.ConnectError("[Errno 111] Connection refused")] * 2)

    async with client_of(script, [], retries=1) as client:
        with pytest.raises(ServerError) as raised:
            await client.me()

    assert "Connection refused" in str(raised.value)
    assert "\n" not in str(raised.value)


async def test_starting_an_upload_is_not_retried_after_the_request_may_have_arrived(tmp_path: Path) -> None:
    """A POST whose answer was lost may have made an upload: it is not sent twice (a 503 is, as it is
    answered before the server acts)."""
    path = tmp_path / "a.bin"
    path.write_bytes(b"x")
    script = Script(
        httpx.Response(200, json={"uploads": [], "next_cursor": None}),
        httpx.Response(503, headers={"retry-after": "1"}, json={"error": "busy"}),
        httpx.ReadError("connection reset"),
    )

    async with client_of(script, []) as client:
        with pytest.raises(ServerError, match="connection reset"):
            await client.upload(path)

    assert [request.method for request in script.requests] == ["GET", "POST", "POST"]


async def test_an_empty_file_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    script = Script()

    async with client_of(script, []) as client:
        with pytest.raises(LfusysError, match="empty"):
            await client.upload(path)

    assert script.requests == []


SERVER_SIDE = [
    "litestar",
    "uvicorn",
    "aioboto3",
    "botocore",
    "redis",
    "argon2",
    "sqlite3",
    "aiosqlite",
    "prometheus_client",
    "opentelemetry",
    "structlog",
    "jwt",
    "authlib",
    "lfusys.storage",
    "lfusys.app",
    "lfusys.settings",
    "lfusys.services",
]


def test_importing_the_client_loads_nothing_of_the_server() -> None:
    code = (
        "import json, sys, lfusys.client, lfusys.client.api, lfusys.client.errors\n"
        f"names = {SERVER_SIDE!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if any(m == n or m.startswith(n + '.') for n in names))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert json.loads(result.stdout) == []
