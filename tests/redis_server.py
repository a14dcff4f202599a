"""The Redis that tests of the KV talk to.

Debian's ``redis-server`` (installed by ``scripts/bootstrap --test``) is started once per test process,
on first use, on a free loopback port, with nothing saved to disk; it is stopped by its PID when the
session ends. Tests that need Redis to fail stop it (or pause it) and start it again on the same port.
Each test keeps to keys of its own through a prefix derived from its data directory.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

_START_PATIENCE = 10.0
_STOP_PATIENCE = 10.0
_LOG_TAIL = 4000


class RedisServerError(RuntimeError):
    """redis-server is not installed, or did not come up."""


@dataclass
class _Server:
    binary: str
    port: int
    work_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


_server: _Server | None = None
"""The redis-server of this test process, once asked for (one per process, not per test)."""


def redis_url() -> str:
    """The URL of this process's redis-server, starting it on first use (or again, should it have died)."""
    global _server
    if _server is None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError("redis-server is not installed: run scripts/bootstrap --test")
        _server = _Server(binary, _free_port(), Path(tempfile.mkdtemp(prefix="lfusys-redis-")))
        # Also stopped if the session ends without its fixtures' teardown (stopping twice is harmless).
        atexit.register(stop_redis)
    if _server.process is None or _server.process.poll() is not None:
        _start(_server)
    return _server.url


def redis_overrides(data_dir: Path) -> dict[str, Any]:
    """Settings overrides (for ``load_settings``) that give a test this process's Redis, with keys of its own."""
    return {"redis_url": redis_url(), "redis_prefix": key_prefix(data_dir)}


def redis_env(data_dir: Path) -> dict[str, str]:
    """:func:`redis_overrides` as environment variables, for a child process."""
    return {"LFUSYS_REDIS_URL": redis_url(), "LFUSYS_REDIS_PREFIX": key_prefix(data_dir)}


def key_prefix(data_dir: Path) -> str:
    """A ``LFUSYS_REDIS_PREFIX`` that only ``data_dir`` maps to (an app built again on it finds its keys)."""
    return "t" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16] + ":"


def stop_redis() -> None:
    """Stop the redis-server this process started, by its PID (SIGTERM, then kill), and remove its
    directory; nothing if none runs. Asked for again, it starts anew."""
    if _server is not None:
        _halt(_server)
        shutil.rmtree(_server.work_dir, ignore_errors=True)


def restart_redis() -> None:
    """Stop Redis and start it again on the same port (every key is gone then)."""
    _halt(_running())
    redis_url()


@contextlib.contextmanager
def stop_redis_for_a_while() -> Iterator[None]:
    """Redis is down inside the block (connections are refused); it runs again, empty, on the same port
    after it."""
    _halt(_running())
    try:
        yield
    finally:
        redis_url()


@contextlib.contextmanager
def paused_redis() -> Iterator[None]:
    """Redis is frozen inside the block (SIGSTOP): it accepts connections but answers nothing, as a
    stalled server does. It goes on (SIGCONT), keys intact, after it."""
    process = _running().process
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        process.send_signal(signal.SIGCONT)


async def age_keys(prefix: str, elapsed: timedelta) -> None:
    """Shorten the lifetime of every key under ``prefix`` by ``elapsed``, deleting those it ends: what
    Redis would see after that much time. (Redis keeps its own time, which a test's clock cannot move.)"""
    client = redis.asyncio.Redis.from_url(redis_url())
    try:
        async for key in client.scan_iter(match=prefix + "*"):
            left = await client.pttl(key)
            if left < 0:  # gone, or no lifetime
                continue
            remaining = left - round(elapsed / timedelta(milliseconds=1))
            if remaining > 0:
                await client.pexpire(key, remaining)
            else:
                await client.delete(key)
    finally:
        await client.aclose()


def _running() -> _Server:
    redis_url()
    assert _server is not None
    return _server


def _start(server: _Server) -> None:
    server.work_dir.mkdir(parents=True, exist_ok=True)
    log_path = server.work_dir / "redis.log"
    command = [
        server.binary,
        *("--port", str(server.port), "--bind", "127.0.0.1"),
        *("--save", "", "--appendonly", "no"),
        *("--dir", str(server.work_dir), "--logfile", str(log_path)),
    ]
    server.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + _START_PATIENCE
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=1, socket_connect_timeout=1)
    try:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RedisServerError(f"redis-server exited with {server.process.returncode}:\n{_tail(log_path)}")
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return
            time.sleep(0.02)
    finally:
        client.close()
    _halt(server)
    raise RedisServerError(f"redis-server did not answer within {_START_PATIENCE:.0f}s:\n{_tail(log_path)}")


def _halt(server: _Server) -> None:
    process = server.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGCONT)  # a paused server could not act on SIGTERM
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=_STOP_PATIENCE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log_path: Path) -> str:
    try:
        return log_path.read_text(errors="replace")[-_LOG_TAIL:]
    except OSError:
        return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
