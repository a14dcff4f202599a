"""The ``lfusys`` command: version, serve, the memory backend's limits, configuration errors, and the
operator's views of stuck uploads and dead letters (``uploads``, ``dead-letters --redrive``) on the
durable backends.

(``migrate`` and ``dead-letters`` across processes need data that outlives a process:
tests/integration/storage/local/test_cli.py.)"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from lfusys import __version__
from lfusys.storage.backend import open_backend, server_keys
from lfusys.storage.ports import EventQueue
from tests.support import (
    API,
    READY,
    FakeClock,
    LiveServer,
    drain_events,
    eventually,
    lfusys_command,
    lose_queued_events,
    make_failed,
    make_settings,
    opened_services,
    random_bytes,
    register_owner,
    stored_upload,
    subprocess_env,
)


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


@pytest.mark.durable_only("the command reads what this process stored")
async def test_uploads_lists_failed_and_stalled_sessions_of_every_user(
    data_dir: Path, backend_name: str, clock: FakeClock
) -> None:
    async with opened_services(data_dir, clock, backend_name) as services:
        ada, eve = await register_owner(services), await register_owner(services, "eve@example.com")
        failed = await stored_upload(services, ada, random_bytes(5000))
        await make_failed(services, clock, failed.id, "chunk 2 is missing")
        stalled = await stored_upload(services, eve, random_bytes(5000), order=[1])
        await lose_queued_events(services)  # its chunk is stored, its storage event never recorded

    def uploads(*args: str) -> subprocess.CompletedProcess[str]:
        return run(data_dir, "uploads", *args, LFUSYS_BACKEND=backend_name, LFUSYS_STALLED_AFTER="0s")

    failed_plain, failed_json = uploads("--status", "failed"), uploads("--status", "failed", "--json")
    stalled_plain, stalled_json = uploads("--status", "stalled"), uploads("--status", "stalled", "--json")
    none_plain, none_json = uploads("--status", "finalizing"), uploads("--status", "finalizing", "--json")

    for result in (failed_plain, failed_json, stalled_plain, stalled_json, none_plain, none_json):
        assert result.returncode == 0, result.stderr
    (line,) = failed_plain.stdout.splitlines()
    assert line.split()[:5] == [failed.id, ada.id, "data.bin", "5000", "failed"]
    assert line.endswith("ago: chunk 2 is missing")
    (listed,) = [json.loads(line) for line in failed_json.stdout.splitlines()]
    assert (listed["id"], listed["owner_id"], listed["status"]) == (failed.id, ada.id, "failed")
    assert (listed["failure_reason"], listed["file_size"]) == ("chunk 2 is missing", 5000)
    assert listed["age_seconds"] >= 0
    (line,) = stalled_plain.stdout.splitlines()
    assert line.split()[:5] == [stalled.id, eve.id, "data.bin", "5000", "pending"]
    assert "0 of 2 chunks recorded, 1 stored" in line
    assert [json.loads(line)["id"] for line in stalled_json.stdout.splitlines()] == [stalled.id]
    assert (none_plain.stdout, none_plain.stderr.strip().splitlines()[-1]) == ("", "no finalizing uploads")
    assert (none_json.stdout, "no finalizing uploads" in none_json.stderr) == ("", False)


def test_uploads_with_an_unknown_status_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path / "data", "uploads", "--status", "stuck")

    assert result.returncode == 2
    assert "argument --status: invalid choice: 'stuck'" in result.stderr
    assert "Traceback" not in result.stderr


async def dead_lettered(queue: EventQueue, body: str) -> None:
    """Receive ``body`` without handling it until the queue gives up on it."""

    async def given_up() -> bool:
        await queue.receive(10, 0, 0)
        return body in [letter.body for letter in await queue.dead_letters(10)]

    await eventually(given_up, within=20)


@pytest.mark.durable_only("the command changes the queue this process reads")
async def test_dead_letters_redrive_puts_them_back_on_the_queue(data_dir: Path, backend_name: str) -> None:
    settings = make_settings(data_dir, backend=backend_name, queue_max_receives=1)

    def dead_letters(*args: str) -> subprocess.CompletedProcess[str]:
        result = run(data_dir, "dead-letters", *args, LFUSYS_BACKEND=backend_name, LFUSYS_QUEUE_MAX_RECEIVES="1")
        assert result.returncode == 0, result.stderr
        return result

    async with open_backend(settings, server_keys(settings), FakeClock()) as backend:
        await drain_events(backend.queue)  # S3's test message, on the aws backend
        await backend.queue.send("not an S3 event")
        await dead_lettered(backend.queue, "not an S3 event")
        (letter,) = [json.loads(line) for line in dead_letters().stdout.splitlines()]

        unknown = dead_letters("--redrive", "--id", "no-such-letter")
        named = dead_letters("--redrive", "--id", letter["id"])
        listed_after = dead_letters()
        (message,) = await backend.queue.receive(10, 1, 30)
        await backend.queue.extend_visibility(message.receipt, 0)
        await dead_lettered(backend.queue, "not an S3 event")  # handled no better the second time
        listed_again = dead_letters()
        every = dead_letters("--redrive")

        assert await backend.queue.dead_letters(10) == []
        assert [m.body for m in await backend.queue.receive(10, 1, 30)] == ["not an S3 event"]

    assert letter["body"] == "not an S3 event"
    assert unknown.stdout.strip() == "redriven 0 dead letter(s) to the queue"
    assert named.stdout.strip() == "redriven 1 dead letter(s) to the queue"
    assert listed_after.stdout == ""
    assert (message.body, message.receive_count) == ("not an S3 event", 1)
    assert [json.loads(line)["body"] for line in listed_again.stdout.splitlines()] == ["not an S3 event"]
    assert every.stdout.strip() == "redriven 1 dead letter(s) to the queue"
