"""Signing in during a flood of password guesses: what an honest user waits, and what the server spends.

One ``lfusys serve`` (local backend, one process, argon2 at its default cost) at a time, with
``LFUSYS_TRUSTED_PROXIES=127.0.0.1`` so ``X-Forwarded-For`` counts, as behind a load balancer. Each
variant in turn:

* ``before`` (with ``--before REV``): that revision, in a temporary git worktree;
* ``unprotected``: the working tree with every ``LFUSYS_RATE_LIMIT_*=0`` and the argon2 bound raised
  (``LFUSYS_ARGON2_CONCURRENCY=64``, ``LFUSYS_ARGON2_QUEUE_WAIT=1m``): nothing stands in the way;
* ``bound only``: the rate limits off, the argon2 bound at its defaults;
* ``after``: the working tree with its defaults.

Per variant: ``--users`` real users register (each from an address of its own) and sign in once on
the idle server; then ``--flooders`` clients post wrong passwords for random emails to
``/api/v1/auth/login`` as fast as they are answered, each request from one of ``--addresses`` forwarded
addresses, never waiting out a refusal. After ``--warmup`` seconds each real user signs in once more,
one after another, waiting out 429 and 503 (``Retry-After``) as a patient person would, for up to
``--patience`` seconds. The flood stops when they are done.

Figures are printed and written to ``bench/results/login-flood-<timestamp>.json``; never asserted.

    .venv/bin/python -m bench.login_flood
    .venv/bin/python -m bench.login_flood --before HEAD --addresses 64 4096
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import servers
from bench.common import API, REPO, environment, expect, key_value, log_findings, save, stop_on_sigterm, workspace
from bench.load_bench import Variant, before_worktree, retry_after, snapshot_working_tree
from bench.minihttp import Connection, HttpError, Response, Session
from bench.servers import HOST, RunWatch, Server

PASSWORD = secrets.token_urlsafe(18)
"""The real users' password (a fresh one each sitting)."""
RATE_LIMITS_OFF = {f"LFUSYS_RATE_LIMIT_{name}": "0" for name in ("LOGIN", "LOGIN_EMAIL", "REGISTER", "AUTH", "API")}
VARIANTS: dict[str, dict[str, str]] = {
    "unprotected": RATE_LIMITS_OFF | {"LFUSYS_ARGON2_CONCURRENCY": "64", "LFUSYS_ARGON2_QUEUE_WAIT": "1m"},
    "bound only": RATE_LIMITS_OFF,
    "after": {},
}
"""Environment of each working-tree variant on top of the common one."""
SERVER_ENV = {
    "LFUSYS_LOG_LEVEL": "warning",
    "LFUSYS_LOG_FORMAT": "json",
    "LFUSYS_TRUSTED_PROXIES": "127.0.0.1",
}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def real_address(n: int) -> str:
    return f"198.51.100.{n + 1}"


def flood_address(n: int) -> str:
    return f"100.{64 + n // 65536}.{n // 256 % 256}.{n % 256}"


@dataclass
class SignIn:
    """One real user's sign-in: its first answer, and how long until it was in (with waits)."""

    first_status: int
    first_ms: float
    statuses: list[int]
    signed_in_ms: float | None
    """First attempt sent → 200, refusals waited out; None if it never got in within the patience."""


@dataclass
class Run:
    variant: str
    addresses: int
    idle_ms: list[float] = field(default_factory=list)
    sign_ins: list[SignIn] = field(default_factory=list)
    flood_counts: dict[str, int] = field(default_factory=dict)
    flood_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    other_cpu_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    vm_hwm_mib: float = 0.0
    exit_status: int | None = None
    log_warnings: int = 0
    log_first: list[str] = field(default_factory=list)


class Client:
    """A browser's view: one connection, its cookies and CSRF header."""

    def __init__(self, port: int, address: str) -> None:
        self.connection = Connection(HOST, port)
        self.session = Session()
        self.address = address

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Response:
        headers = self.session.headers() | {"X-Forwarded-For": self.address}
        data = b""
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        response = await self.connection.request(method, API + path, headers=headers, body=data)
        self.session.absorb(response)
        return response

    async def close(self) -> None:
        await self.connection.close()


async def real_user(port: int, n: int) -> Client:
    """A registered user (from an address of its own: registrations are limited per address)."""
    client = Client(port, real_address(n))
    await client.call("GET", "/auth/providers")  # the CSRF cookie
    body = {"name": f"Real {n}", "email": f"real-{n}@example.com", "password": PASSWORD}
    expect(await client.call("POST", "/auth/register", body), 201, "register")
    return client


async def sign_in(client: Client, n: int, patience: float) -> SignIn:
    body = {"email": f"real-{n}@example.com", "password": PASSWORD}
    await client.connection.open()
    statuses: list[int] = []
    first_ms = 0.0
    started = time.perf_counter()
    while True:
        sent = time.perf_counter()
        response = await client.call("POST", "/auth/login", body)
        if not statuses:
            first_ms = (time.perf_counter() - sent) * 1000
        statuses.append(response.status)
        elapsed = time.perf_counter() - started
        if response.status == 200:
            return SignIn(statuses[0], first_ms, statuses, elapsed * 1000)
        wait = retry_after(response)
        if response.status not in (429, 503) or elapsed + wait > patience:
            return SignIn(statuses[0], first_ms, statuses, None)
        await asyncio.sleep(wait)


async def flooder(
    port: int, csrf: dict[str, str], addresses: int, seed: int, stop: asyncio.Event, counts: Counter[str]
) -> None:
    """Wrong passwords for random emails, as fast as answers come, never waiting out a refusal."""
    rng = random.Random(seed)
    connection = Connection(HOST, port)
    try:
        while not stop.is_set():
            headers = csrf | {
                "Content-Type": "application/json",
                "X-Forwarded-For": flood_address(rng.randrange(addresses)),
            }
            body = json.dumps({"email": f"guess-{rng.getrandbits(40):x}@example.com", "password": "letmein123"})
            try:
                response = await connection.request("POST", f"{API}/auth/login", headers=headers, body=body.encode())
                counts[str(response.status)] += 1
            except HttpError:
                counts["connection error"] += 1
                await connection.close()
    finally:
        await connection.close()


async def measure(server: Server, run: Run, args: argparse.Namespace) -> None:
    port = server.port
    users = [await real_user(port, n) for n in range(args.users)]
    for n, user in enumerate(users):
        sent = time.perf_counter()
        expect(
            await user.call("POST", "/auth/login", {"email": f"real-{n}@example.com", "password": PASSWORD}),
            200,
            "idle sign-in",
        )
        run.idle_ms.append((time.perf_counter() - sent) * 1000)
    # The flood shares one CSRF token (any token the server handed out will do).
    token = users[0].session.cookies["lfusys_csrf"]
    csrf = {"Cookie": f"lfusys_csrf={token}", "X-CSRF-Token": token}

    stop = asyncio.Event()
    counts: Counter[str] = Counter()
    watch = RunWatch(server.pid)
    with watch.running():
        started = time.perf_counter()
        flood = [
            asyncio.create_task(flooder(port, csrf, run.addresses, seed, stop, counts)) for seed in range(args.flooders)
        ]
        try:
            await asyncio.sleep(args.warmup)
            for n, user in enumerate(users):
                run.sign_ins.append(await sign_in(user, n, args.patience))
                await asyncio.sleep(args.gap)
        finally:
            stop.set()
            await asyncio.gather(*flood, return_exceptions=True)
        run.flood_seconds = time.perf_counter() - started
    run.flood_counts = dict(counts)
    run.server_cpu_seconds = watch.server_user_seconds + watch.server_system_seconds
    run.client_cpu_seconds = watch.client_cpu_seconds
    run.other_cpu_seconds = watch.other_cpu_seconds
    run.peak_rss_mib = watch.peak_kib / 1024
    for user in users:
        await user.close()


async def run_variant(
    variant: Variant, name: str, extra_env: dict[str, str], addresses: int, args: argparse.Namespace, workdir: Path
) -> Run:
    directory = workdir / f"{name.replace(' ', '-')}-{addresses}"
    directory.mkdir()
    env = variant.env() | SERVER_ENV | {"LFUSYS_DATA_DIR": str(directory / "data")}
    web_dir = REPO / "web" / "dist"
    if (web_dir / "index.html").is_file():  # so no server logs that the web app is missing
        env["LFUSYS_WEB_DIR"] = str(web_dir)
    env |= extra_env | dict(args.server_env)
    port = servers.free_port()
    argv = [str(Path(sys.executable).parent / "lfusys"), "serve", "--host", HOST, "--port", str(port)]
    server = servers.start(name, argv, env, port, directory / "server.log", directory)
    run = Run(name, addresses)
    try:
        await servers.wait_ready(server, "/health/ready")
        print(f"  {name}, {addresses} flood addresses: pid {server.pid}, port {port}", flush=True)
        await measure(server, run, args)
    finally:
        run.vm_hwm_mib = (servers.proc_status_kib(server.pid, "VmHWM") or 0) / 1024
        run.exit_status = servers.stop(server)
        run.log_warnings, run.log_first = log_findings(server.log_path)
    return run


# --- the table ----------------------------------------------------------------------------------


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} / {percentile(values, 95):.0f}"


def rows(run: Run) -> dict[str, str]:
    first = [s.first_ms for s in run.sign_ins]
    done = [s.signed_in_ms for s in run.sign_ins if s.signed_in_ms is not None]
    firsts = Counter(s.first_status for s in run.sign_ins)
    counts = run.flood_counts
    total = sum(counts.values())
    seconds = run.flood_seconds or math.nan
    return {
        "idle sign-in p50 / p95 ms": _ms(run.idle_ms),
        "flood: sign-in answer p50 / p95 ms": _ms(first),
        "flood: first answers (status x count)": " ".join(f"{status}x{n}" for status, n in sorted(firsts.items())),
        "flood: signed in (waiting out 429/503) p50 / p95 ms": _ms(done),
        "flood: users not signed in within patience": f"{len(run.sign_ins) - len(done)} of {len(run.sign_ins)}",
        "flood: requests/s": f"{total / seconds:.0f}",
        "flood: 401 / 429 / 503 / other": (
            f"{counts.get('401', 0)} / {counts.get('429', 0)} / {counts.get('503', 0)} / "
            f"{total - counts.get('401', 0) - counts.get('429', 0) - counts.get('503', 0)}"
        ),
        "flood: password checks/s (401s)": f"{counts.get('401', 0) / seconds:.1f}",
        "flood: server CPU s (cores)": f"{run.server_cpu_seconds:.1f} ({run.server_cpu_seconds / seconds:.2f})",
        "flood: client CPU s / rest of machine CPU s": f"{run.client_cpu_seconds:.1f} / {run.other_cpu_seconds:.1f}",
        "flood: seconds": f"{run.flood_seconds:.1f}",
        "peak RSS MiB (flood) / VmHWM": f"{run.peak_rss_mib:.0f} / {run.vm_hwm_mib:.0f}",
        "server log lines at warning or above": str(run.log_warnings),
    }


def table(runs: list[Run]) -> str:
    lines = [["", *(f"{run.variant} ({run.addresses} addr)" for run in runs)]]
    labels = list(rows(runs[0])) if runs else []
    by_run = [rows(run) for run in runs]
    lines += [[label, *(cells[label] for cells in by_run)] for label in labels]
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]

    def render(line: list[str]) -> str:
        return " | ".join([line[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True))])

    return "\n".join([render(lines[0]), "-" * len(render(lines[0])), *(render(line) for line in lines[1:])])


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.login_flood", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--before", metavar="REV", help="also measure this git revision (a temporary worktree)")
    parser.add_argument(
        "--variants",
        nargs="*",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="working-tree variants to measure (default: all)",
    )
    parser.add_argument("--users", type=int, default=20, help="real users, one sign-in each under the flood (20)")
    parser.add_argument("--flooders", type=int, default=64, help="concurrent flooding clients (64)")
    parser.add_argument(
        "--addresses", type=int, nargs="+", default=[64], help="forwarded addresses the flood comes from (64); in turn"
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of flood before the first real sign-in")
    parser.add_argument("--gap", type=float, default=0.25, help="seconds between real sign-ins")
    parser.add_argument("--patience", type=float, default=30.0, help="seconds a real user keeps trying")
    parser.add_argument(
        "--server-env", type=key_value, action="append", default=[], metavar="KEY=VALUE", help="for every server"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary directory (data, logs)")
    args = parser.parse_args(argv)
    if min(args.users, args.flooders, *args.addresses) < 1:
        parser.error("counts must be at least 1")
    if not args.variants and not args.before:
        parser.error("nothing to measure: name --variants or --before")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    payload: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment()}
    payload["arguments"] = vars(args)
    runs: list[Run] = []
    with workspace(args.keep_data, "lfusys-flood-") as workdir, contextlib.ExitStack() as trees:
        after = snapshot_working_tree(workdir / "after-tree")
        plan: list[tuple[Variant, str, dict[str, str]]] = []
        if args.before:
            before = trees.enter_context(before_worktree(args.before, workdir / "before-tree"))
            plan.append((before, "before", {}))
        plan += [(after, name, VARIANTS[name]) for name in args.variants]
        for variant, _, _ in plan:
            variant.check()
        print("\n".join(f"{variant.name}: {variant.revision}" for variant in {v.name: v for v, _, _ in plan}.values()))
        for addresses in args.addresses:
            for variant, name, extra_env in plan:
                runs.append(asyncio.run(run_variant(variant, name, extra_env, addresses, args, workdir)))
    text = table(runs)
    for run in runs:
        share = run.other_cpu_seconds / run.flood_seconds if run.flood_seconds else 0.0
        if share > 0.1:  # other processes took more than a tenth of a core: the figures are disturbed
            text += (
                f"\nDISTURBED: {run.variant} ({run.addresses} addr): the rest of the machine used {share:.0%} of a core"
            )
    for run in runs:
        if run.log_warnings:
            print(f"\n{run.variant} server log: {run.log_warnings} line(s) at warning or above, first ones:")
            print("\n".join(f"  {line}" for line in run.log_first))
    print(f"\n{text}")
    payload |= {"runs": [asdict(run) for run in runs], "table": text.splitlines()}
    print(f"\nresults written to {save(payload, 'login-flood-')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
