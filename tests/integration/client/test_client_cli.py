"""``lfusys login | upload | ls | download | rm`` as a user runs them, against a real server: JSON
output, exit statuses, one-line errors, the saved token, and uploads stopped by SIGINT or SIGKILL that
the same command resumes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.client.conftest import CHUNK_SIZE, new_user, write_file
from tests.support import PASSWORD, LiveServer, lfusys_command, random_bytes

pytestmark = pytest.mark.durable_only("a live server process, on each backend that outlives one")


def client_env(home: Path, **variables: str) -> dict[str, str]:
    """This process's environment without any LFUSYS_* setting, with a home of the test's own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LFUSYS_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), **variables)
    return env


def lfusys(
    env: dict[str, str], *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lfusys_command(), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def env(server: LiveServer, token: str, tmp_path: Path) -> dict[str, str]:
    return client_env(tmp_path / "home", LFUSYS_URL=server.url, LFUSYS_TOKEN=token)


def test_upload_ls_download_rm(env: dict[str, str], tmp_path: Path) -> None:
    first = write_file(tmp_path / "a.bin", random_bytes(3 * CHUNK_SIZE + 5))
    second = write_file(tmp_path / "b.txt", b"hello")

    uploaded = lfusys(env, "upload", str(first), str(second), "--json")
    results = [line for line in json_lines(uploaded.stdout) if line["event"] == "uploaded"]
    listed = lfusys(env, "ls", "--json")
    plain = lfusys(env, "ls")
    downloaded = lfusys(env, "download", results[0]["file_id"], "-o", str(tmp_path / "copy.bin"))

    assert uploaded.returncode == 0, uploaded.stderr
    events = json_lines(uploaded.stdout)
    assert [event["event"] for event in events if event["file"] == str(first)] == [
        "start",
        "chunk",
        "chunk",
        "chunk",
        "chunk",
        "finalizing",
        "uploaded",
    ]
    assert [(result["name"], result["size"]) for result in results] == [("a.bin", 3 * CHUNK_SIZE + 5), ("b.txt", 5)]
    assert listed.returncode == 0
    assert [line["id"] for line in json_lines(listed.stdout)] == [results[1]["file_id"], results[0]["file_id"]]
    assert "a.bin" in plain.stdout
    assert downloaded.returncode == 0, downloaded.stderr
    assert (tmp_path / "copy.bin").read_bytes() == first.read_bytes()

    for result in results:
        removed = lfusys(env, "rm", result["file_id"])
        assert removed.returncode == 0, removed.stderr
    assert lfusys(env, "ls", "--json").stdout == ""


def test_plain_upload_output_and_download_to_a_directory(env: dict[str, str], tmp_path: Path) -> None:
    path = write_file(tmp_path / "a.bin", random_bytes(2 * CHUNK_SIZE))
    (tmp_path / "out").mkdir()

    uploaded = lfusys(env, "upload", str(path))
    file_id = uploaded.stdout.split("uploaded as ")[1].split()[0]
    downloaded = lfusys(env, "download", file_id, "-o", str(tmp_path / "out"))

    assert uploaded.returncode == 0, uploaded.stderr
    assert "a.bin: 8.0 KiB in 2 chunks" in uploaded.stdout
    assert "checksum verified" in uploaded.stdout
    assert downloaded.returncode == 0
    assert (tmp_path / "out" / "a.bin").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("command", [["download", "nope"], ["rm", "nope"]])
def test_an_unknown_file_is_exit_1_with_one_line(env: dict[str, str], command: list[str]) -> None:
    result = lfusys(env, *command)

    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("lfusys: ")
    assert "(HTTP 404)" in result.stderr


def test_a_missing_local_file_is_exit_1(env: dict[str, str], tmp_path: Path) -> None:
    result = lfusys(env, "upload", str(tmp_path / "nothing.bin"))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"lfusys: {tmp_path / 'nothing.bin'}: No such file or directory"]


def test_not_logged_in_is_exit_2(tmp_path: Path) -> None:
    result = lfusys(client_env(tmp_path / "home"), "ls")

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "lfusys: not logged in: run lfusys login --server URL (or set LFUSYS_URL and LFUSYS_TOKEN)"
    ]


def test_a_wrong_token_is_exit_1(server: LiveServer, tmp_path: Path) -> None:
    env = client_env(tmp_path / "home", LFUSYS_URL=server.url, LFUSYS_TOKEN="lfusys_" + "0" * 16 + "_" + "A" * 43)

    result = lfusys(env, "ls")

    assert result.returncode == 1
    assert "(HTTP 401)" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_login_saves_a_working_token_readable_by_its_owner_only(server: LiveServer, tmp_path: Path) -> None:
    email, _ = new_user(server)
    env = client_env(tmp_path / "home")

    logged_in = lfusys(env, "login", "--server", server.url, stdin=f"{email}\n{PASSWORD}\n")
    listed = lfusys(env, "ls", "--json")
    wrong = lfusys(env, "login", "--server", server.url, stdin=f"{email}\nnot the password\n")

    assert logged_in.returncode == 0, logged_in.stderr
    assert f"as {email}" in logged_in.stdout
    config = tmp_path / "home" / "config" / "lfusys" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    saved = json.loads(config.read_text())
    assert saved["server"] == server.url
    assert saved["token"].startswith("lfusys_")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""
    assert wrong.returncode == 1
    assert "(HTTP 401)" in wrong.stderr
    assert json.loads(config.read_text()) == saved


def test_a_file_changed_since_its_interrupted_upload_is_exit_3(env: dict[str, str], tmp_path: Path) -> None:
    data = bytearray(random_bytes(600 * CHUNK_SIZE))
    path = write_file(tmp_path / "big.bin", bytes(data))
    stop_mid_upload(env, path, signal.SIGKILL)
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))

    result = lfusys(env, "upload", str(path), "--json")
    restarted = lfusys(env, "upload", str(path), "--restart", "--json")

    assert result.returncode == 3
    assert "changed since its interrupted upload" in result.stderr
    assert "--restart" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not any(line["event"] == "chunk" for line in json_lines(result.stdout))
    assert restarted.returncode == 0, restarted.stderr


def stop_mid_upload(env: dict[str, str], path: Path, signum: signal.Signals) -> tuple[int, str]:
    """Start ``lfusys upload --json`` with one chunk in flight; send ``signum`` (by PID) once 20 chunks are
    stored; its exit status and stderr."""
    process = subprocess.Popen(
        [*lfusys_command(), "upload", str(path), "--json", "--concurrency", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    chunks = 0
    for line in process.stdout:
        if json.loads(line)["event"] == "chunk":
            chunks += 1
            if chunks == 20:
                break
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_an_upload_stopped_by_a_signal_is_resumed_by_the_same_command(
    env: dict[str, str], tmp_path: Path, signum: signal.Signals
) -> None:
    data = random_bytes(600 * CHUNK_SIZE)
    path = write_file(tmp_path / "big.bin", data)

    status, stderr = stop_mid_upload(env, path, signum)
    again = lfusys(env, "upload", str(path), "--json")

    if signum == signal.SIGINT:
        assert status == 130
        assert stderr == "lfusys: interrupted; run the same command again to resume\n"
    else:
        assert status == -signal.SIGKILL
    assert again.returncode == 0, again.stderr
    events = json_lines(again.stdout)
    assert 20 <= events[0]["resumed_chunks"] < 600
    sent = [event for event in events if event["event"] == "chunk"]
    assert len(sent) == 600 - events[0]["resumed_chunks"]
    file_id = events[-1]["file_id"]
    downloaded = lfusys(env, "download", file_id, "-o", str(tmp_path / "copy.bin"))
    assert downloaded.returncode == 0, downloaded.stderr
    assert (tmp_path / "copy.bin").read_bytes() == data
