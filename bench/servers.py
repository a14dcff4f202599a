"""Starting, watching and stopping the servers under test, each a child process of the benchmark.

Processes are only ever stopped by the PID this module started (SIGTERM, a grace period, then
SIGKILL); nothing is looked up or killed by name. Memory figures come from ``/proc/<pid>/status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.minihttp import Connection, HttpError

HOST = "127.0.0.1"
MiB = 1024 * 1024


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """A server process under test and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


def start(name: str, argv: Sequence[str], env: Mapping[str, str], port: int, log_path: Path, cwd: Path) -> Server:
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        list(argv), env=dict(env), cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    return Server(name, process, port, log_path, log_file)


async def wait_ready(server: Server, path: str, status: int | None = 200, patience: float = 60.0) -> None:
    """Poll ``path`` until it answers ``status`` (None: any status); fail early if the process exits."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}; see {server.log_path}")
        connection = Connection(HOST, server.port)
        try:
            answer = (await connection.request("GET", path)).status
            if status is None or answer == status:
                return
        except (HttpError, OSError):
            pass
        finally:
            await connection.close()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {patience:.0f} s; see {server.log_path}")


def stop(server: Server, grace: float = 40.0) -> int:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; returns the exit status."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    server.log_file.close()
    return process.returncode


def proc_status_kib(pid: int, field: str) -> int | None:
    """A ``kB`` field (``VmRSS``, ``VmHWM`` …) of ``/proc/<pid>/status``; None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid``, from every thread's ``children`` list."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError):
                found += [int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return sorted(set(found))


def command_line(pid: int) -> str:
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return ""


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time the process (all its threads) has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may contain spaces; fields after it may not
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used so far (``/proc/stat``, all CPUs)."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")


class RunWatch:
    """What a server process uses during one run, watched from outside it.

    * peak VmRSS, sampled every ``interval`` seconds in a thread (not an asyncio task, so a busy
      client event loop cannot delay the samples);
    * CPU seconds of the server (user and system apart: system time is where writing into page
      cache shows, see bench/README.md) and of this (client) process, as both share the cores;
    * CPU seconds used by the rest of the machine meanwhile: the kernel's writeback, journal and
      interrupt work (some always) and other users' processes (which disturb the figures).
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"rss-{pid}", daemon=True)
        self.peak_kib = 0
        self.server_user_seconds = 0.0
        self.server_system_seconds = 0.0
        self.client_cpu_seconds = 0.0
        self.other_cpu_seconds = 0.0

    def _sample(self) -> None:
        while True:
            self.peak_kib = max(self.peak_kib, proc_status_kib(self._pid, "VmRSS") or 0)
            if self._stop.wait(self._interval):
                return

    @contextlib.contextmanager
    def running(self) -> Iterator[RunWatch]:
        (user, system), client, machine = cpu_seconds(self._pid), time.process_time(), machine_busy_seconds()
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            user_after, system_after = cpu_seconds(self._pid)
            self.server_user_seconds = user_after - user
            self.server_system_seconds = system_after - system
            self.client_cpu_seconds = time.process_time() - client
            ours = self.server_user_seconds + self.server_system_seconds + self.client_cpu_seconds
            self.other_cpu_seconds = machine_busy_seconds() - machine - ours
