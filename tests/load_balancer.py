"""A real load balancer for tests: Debian's HAProxy in front of some servers on 127.0.0.1.

Round robin per request, no stickiness (a browser's requests land on every replica in turn), health
checks on ``/health/live`` so a dead replica is taken out within a second, and a request whose
connection to a replica fails before anything was sent is tried on another (``redispatch``). HAProxy
adds ``X-Forwarded-For``. It runs in the foreground (``-db``) as a child process, stopped by its PID.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.support import free_port, stop_process


class LoadBalancer:
    def __init__(self, backends: list[str], workdir: Path) -> None:
        """``backends`` are ``host:port`` addresses."""
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(haproxy).exists():
            raise RuntimeError("HAProxy is not installed: run scripts/bootstrap --test")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "haproxy.cfg"
        self.config_path.write_text(_config(self.port, backends))
        self.log_path = workdir / "haproxy.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [haproxy, "-db", "-f", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_listening()

    def _wait_until_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.process.returncode}: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("haproxy did not start in time")

    def stop(self) -> int:
        return stop_process(self.process, grace=10)


def _config(port: int, backends: list[str]) -> str:
    servers = "\n".join(
        f"    server replica{i} {address} check inter 300ms fall 2 rise 1"
        for i, address in enumerate(backends, start=1)
    )
    return f"""\
global
    maxconn 512

defaults
    mode http
    option forwardfor
    option redispatch
    retries 2
    retry-on conn-failure empty-response
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout http-request 30s

frontend lfusys
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /health/live
{servers}
"""
