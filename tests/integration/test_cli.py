"""The ``lfusys`` command: version, serve, the memory backend's limits, and configuration errors.

(``migrate`` and ``dead-letters`` across processes need data that outlives a process:
tests/integration/storage/local/test_cli.py.)"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from lfusys import __version__
from tests.support import API, READY, LiveServer, lfusys_command, subprocess_env


def run(data_dir: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lfusys_command(), *args],
        env=subprocess_env(data_dir, **variables),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    result = run(tmp_path, "--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"lfusys {__version__}"


def test_a_bad_setting_stops_the_command_naming_the_variable(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", LFUSYS_PORT="eighty")

    assert result.returncode == 2
    assert "LFUSYS_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_backend_stops_the_command_naming_the_variable(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", LFUSYS_BACKEND="floppy")

    assert result.returncode == 2
    assert "LFUSYS_BACKEND" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_runs_the_api_and_docs_on_a_real_socket(live_server: LiveServer, backend_name: str) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        assert client.get("/health/ready").json() == READY[backend_name]
        assert client.get("/api/docs").status_code == 200
        assert client.get("/api/docs/openapi.json").status_code == 200
        csrf = client.get(f"{API}/auth/me").status_code
        assert csrf == 401
        headers = {"x-csrf-token": client.cookies["lfusys_csrf"]}
        body = {"name": "Ada", "email": "ada@example.com", "password": "correct horse battery"}
        assert client.post(f"{API}/auth/register", json=body, headers=headers).status_code == 201
        login = {"email": "ada@example.com", "password": "correct horse battery"}
        assert client.post(f"{API}/auth/login", json=login, headers=headers).status_code == 200
        assert client.get(f"{API}/auth/me").json()["email"] == "ada@example.com"

    # uvicorn finishes gracefully, then re-raises SIGTERM so the exit status reports it.
    assert live_server.stop() in {0, -signal.SIGTERM}
    assert "Application shutdown complete." in live_server.log_path.read_text()


def test_the_memory_backend_serves_from_one_process_only(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", "--workers", "2", LFUSYS_BACKEND="memory")

    assert result.returncode == 2
    assert "the memory backend runs with one server process (--workers 1)" in result.stderr


def test_the_memory_backend_has_no_separate_worker(tmp_path: Path) -> None:
    result = run(tmp_path, "worker", LFUSYS_BACKEND="memory")

    assert result.returncode == 2
    assert "run lfusys serve" in result.stderr


def test_migrate_on_the_memory_backend_has_nothing_to_do(tmp_path: Path) -> None:
    result = run(tmp_path / "data", "migrate", LFUSYS_BACKEND="memory")

    assert result.returncode == 0, result.stderr
    assert "applied 0 migration(s)" in result.stdout


def test_several_server_processes_without_redis_are_refused_unless_allowed(tmp_path: Path) -> None:
    refused = run(tmp_path / "data", "serve", "--workers", "2")

    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "own rate limits, caches and one-time state: set REDIS_URL, or LFUSYS_ALLOW_PROCESS_KV=true" in (
        refused.stderr
    )
    allowed = LiveServer(tmp_path / "data", tmp_path / "server.log", workers=2, LFUSYS_ALLOW_PROCESS_KV="true")
    try:
        assert httpx.get(f"{allowed.url}/health/ready").json() == READY["local"]
    finally:
        allowed.stop()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_the_aws_backend_without_redis_is_refused(tmp_path: Path, command: str) -> None:
    # (Refused by the settings check, before any AWS endpoint is needed; every aws test of the suite
    # runs with LFUSYS_ALLOW_PROCESS_KV=true or with Redis.)
    env = {**subprocess_env(tmp_path / "data"), "LFUSYS_BACKEND": "aws"}
    result = subprocess.run(
        [*lfusys_command(), command], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "REDIS_URL" in result.stderr
    assert "LFUSYS_ALLOW_PROCESS_KV=true to accept that rate limits, caches and one-time state are per process" in (
        result.stderr
    )
