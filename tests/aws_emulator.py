"""The S3, SQS and DynamoDB endpoint that tests of the aws backend talk to.

When ``AWS_ENDPOINT_URL`` is set before the first test asks for an endpoint, the suite uses it as it is
(some emulator or account an operator pointed it at). Otherwise MiniStack, installed in ``.venv-emu/``
by ``scripts/bootstrap --test``, is started once per test process on a free loopback port, and the
standard AWS variables are set in ``os.environ`` so that in-process clients and child processes both
reach it. Each test keeps to resources of its own through a prefix derived from its data directory.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

MINISTACK = Path(__file__).resolve().parents[1] / ".venv-emu" / "bin" / "ministack"
_START_PATIENCE = 20.0
_STOP_PATIENCE = 10.0
_LOG_TAIL = 4000

# MiniStack accepts any credentials; these name its default region.
_EMULATOR_ENVIRON = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


class EmulatorError(RuntimeError):
    """The emulator is not installed, or did not come up."""


@dataclass
class _Emulator:
    endpoint: str
    process: subprocess.Popen[bytes] | None = None
    """None when the endpoint was given by the environment."""
    log_dir: Path | None = None


_emulator: _Emulator | None = None
"""The endpoint of this test process, once asked for (one emulator per process, not per test)."""


def emulator_endpoint() -> str:
    """The endpoint URL, starting MiniStack on first use unless ``AWS_ENDPOINT_URL`` names one."""
    global _emulator
    if _emulator is None or (_emulator.process is not None and _emulator.process.poll() is not None):
        given = os.environ.get("AWS_ENDPOINT_URL") if _emulator is None else None
        _emulator = _Emulator(given) if given else _start_ministack()
    return _emulator.endpoint


def stop_emulator() -> None:
    """Stop the MiniStack this process started, by its PID (SIGTERM, then kill); nothing if none runs."""
    # The record stays: asked again, emulator_endpoint starts a new one rather than trusting the
    # AWS_ENDPOINT_URL it set itself.
    if _emulator is not None:
        _stop(_emulator)


def _stop(emulator: _Emulator) -> None:
    process = emulator.process
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_PATIENCE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if emulator.log_dir is not None:
        shutil.rmtree(emulator.log_dir, ignore_errors=True)


def aws_overrides(data_dir: Path) -> dict[str, Any]:
    """Settings overrides (for ``load_settings``) that put a test on the emulator, with resources named
    after ``data_dir``: an app built again on the same data directory finds the same bucket, queues and
    tables."""
    emulator_endpoint()
    return {
        "aws_prefix": resource_prefix(data_dir),
        "aws_path_style": True,
        "aws_create_resources": True,
        "aws_min_part_size": 1,
        "aws_connect_timeout": timedelta(seconds=2),
        "aws_read_timeout": timedelta(seconds=10),
        # A stopping worker waits for its long poll to end (so it leaves no message hidden): keep it short.
        "queue_wait_time": timedelta(milliseconds=200),
        # Without Redis the aws backend must be told that one process's KV is enough (a test with Redis
        # adds its settings too, and then Redis is used).
        "allow_process_kv": True,
    }


def aws_env(data_dir: Path) -> dict[str, str]:
    """:func:`aws_overrides` as ``LFUSYS_AWS_*`` environment variables, for a child process."""
    emulator_endpoint()
    return {
        "LFUSYS_AWS_PREFIX": resource_prefix(data_dir),
        "LFUSYS_AWS_PATH_STYLE": "true",
        "LFUSYS_AWS_CREATE_RESOURCES": "true",
        "LFUSYS_AWS_MIN_PART_SIZE": "1",
        "LFUSYS_AWS_CONNECT_TIMEOUT": "2s",
        "LFUSYS_AWS_READ_TIMEOUT": "10s",
        "LFUSYS_QUEUE_WAIT_TIME": "200ms",
        "LFUSYS_ALLOW_PROCESS_KV": "true",
    }


def resource_prefix(data_dir: Path) -> str:
    """A valid ``LFUSYS_AWS_PREFIX`` that only ``data_dir`` maps to."""
    return "t" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]


def _start_ministack() -> _Emulator:
    if not MINISTACK.exists():
        raise EmulatorError(f"MiniStack is not installed ({MINISTACK} is missing): run scripts/bootstrap --test")
    log_dir = Path(tempfile.mkdtemp(prefix="lfusys-ministack-"))
    log_path = log_dir / "ministack.log"
    port = _free_port()
    environ = {
        **os.environ,
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        # Its pid file goes to the temporary directory: keep it beside the log.
        "TMPDIR": str(log_dir),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(MINISTACK)], env=environ, stdout=log, stderr=subprocess.STDOUT)
    emulator = _Emulator(f"http://127.0.0.1:{port}", process, log_dir)
    # Also stopped if the session ends without its fixtures' teardown (stopping twice is harmless).
    atexit.register(_stop, emulator)
    try:
        _wait_until_healthy(emulator, log_path)
    except EmulatorError:
        _stop(emulator)
        raise
    os.environ.update(_EMULATOR_ENVIRON, AWS_ENDPOINT_URL=emulator.endpoint)
    os.environ.pop("AWS_PROFILE", None)
    return emulator


def _wait_until_healthy(emulator: _Emulator, log_path: Path) -> None:
    assert emulator.process is not None
    deadline = time.monotonic() + _START_PATIENCE
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            raise EmulatorError(f"MiniStack exited with {emulator.process.returncode}:\n{_tail(log_path)}")
        try:
            # trust_env=False: a proxy from the environment must not see loopback requests.
            response = httpx.get(f"{emulator.endpoint}/_ministack/health", timeout=1, trust_env=False)
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise EmulatorError(f"MiniStack did not answer within {_START_PATIENCE:.0f}s:\n{_tail(log_path)}")


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-_LOG_TAIL:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
