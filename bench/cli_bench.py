"""``lfusys upload`` (the command line, with its Python client) against the upload benchmark's client, in
one sitting against one ``lfusys serve`` on the embedded default.

Both upload the same random file at the same concurrency, in turns (bench client, CLI, bench client,
CLI …), with hashing on the clock in both:

* bench: the upload benchmark's client (``bench.upload_bench.RealServer``) with ``hash_on_the_clock``:
  each chunk is read and hashed just before it is sent; clock from ``POST /uploads`` to ``completed``.
* cli: ``lfusys upload FILE --json`` as a child process with ``LFUSYS_URL``/``LFUSYS_TOKEN``; clock from
  starting the process to its exit (interpreter start-up, the resume check, hashing, sending, waiting
  for ``completed`` and the final size and checksum check all included). Its CPU time is the child's.

Figures are printed and written to ``bench/results/cli-<timestamp>.json``; never asserted.

    .venv/bin/python -m bench.cli_bench --size-mib 1024 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import servers
from bench.common import environment, save, stop_on_sigterm
from bench.servers import HOST, MiB, RunWatch
from bench.upload_bench import RealServer, TestFile, make_test_file, run_sitting


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def cli_run(server: RealServer, data: TestFile, token: str, concurrency: int) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LFUSYS_")}
    env |= {"LFUSYS_URL": f"http://{HOST}:{server.server.port}", "LFUSYS_TOKEN": token}
    # As installed by pip or uv, with its bytecode cached: the warm-up run writes it, if it is missing.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    argv = [str(Path(sys.executable).parent / "lfusys"), "upload", str(data.path), "--json"]
    argv += ["--concurrency", str(concurrency), "--restart"]
    cpu_before = _children_cpu()
    with RunWatch(server.server.pid).running() as watch:
        start = time.perf_counter()
        finished = await asyncio.to_thread(subprocess.run, argv, env=env, capture_output=True, text=True, check=False)
        stop = time.perf_counter()
    if finished.returncode != 0:
        raise RuntimeError(f"lfusys upload exited {finished.returncode}: {finished.stderr.strip()}")
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    if result.get("event") != "uploaded":
        raise RuntimeError(f"lfusys upload ended with {result}")
    await server.verify_and_delete(str(result["file_id"]), data)
    return {
        "target": "cli",
        "seconds": stop - start,
        "mib_per_s": data.size / MiB / (stop - start),
        "client_cpu_seconds": _children_cpu() - cpu_before,
        "server_cpu_seconds": watch.server_user_seconds + watch.server_system_seconds,
    }


async def bench_run(server: RealServer, data: TestFile, concurrency: int, attempt: int) -> dict[str, Any]:
    run = await server.run(data, concurrency, attempt, hash_on_the_clock=True)
    return {
        "target": "bench",
        "seconds": run.seconds,
        "mib_per_s": run.mib_per_s,
        "client_cpu_seconds": run.client_cpu_seconds,
        "server_cpu_seconds": run.server_cpu_seconds,
    }


async def sitting(args: argparse.Namespace, workdir: Path, started: list[servers.Server]) -> dict[str, Any]:
    [server_process] = started
    await servers.wait_ready(server_process, "/health/ready")
    real = RealServer(server_process)
    await real.sign_up()
    size = args.size_mib * MiB
    chunk_size = await real.chosen_chunk_size(size)
    made = await real.call("POST", "/tokens", 201, {"name": "bench", "scopes": ["upload", "read", "delete"]})
    token = str(made.json()["token"])
    print(f"making a {args.size_mib} MiB test file ({chunk_size / MiB:g} MiB chunks) …", flush=True)
    data = make_test_file(workdir / "test-file.bin", size, chunk_size)
    runs: list[dict[str, Any]] = []
    try:
        await bench_run(real, data, args.concurrency, 0)  # warm-up, not counted
        await cli_run(real, data, token, args.concurrency)
        for attempt in range(1, args.repeat + 1):
            for run in (
                await bench_run(real, data, args.concurrency, attempt),
                await cli_run(real, data, token, args.concurrency),
            ):
                run["attempt"] = attempt
                runs.append(run)
                print(
                    f"{run['target']:>5} #{attempt}: {run['mib_per_s']:7.1f} MiB/s in {run['seconds']:6.2f} s, "
                    f"client CPU {run['client_cpu_seconds']:5.2f} s, server CPU {run['server_cpu_seconds']:5.2f} s",
                    flush=True,
                )
    finally:
        os.close(data.fd)
        await real.control.close()
    gib = size / 1024**3
    summary: dict[str, Any] = {}
    for target in ("bench", "cli"):
        mine = [run for run in runs if run["target"] == target]
        summary[target] = {
            "median_mib_per_s": statistics.median(run["mib_per_s"] for run in mine),
            "client_cpu_seconds_per_gib": statistics.median(run["client_cpu_seconds"] for run in mine) / gib,
            "server_cpu_seconds_per_gib": statistics.median(run["server_cpu_seconds"] for run in mine) / gib,
        }
    summary["cli_over_bench"] = summary["cli"]["median_mib_per_s"] / summary["bench"]["median_mib_per_s"]
    return {
        "size_bytes": size,
        "chunk_size": chunk_size,
        "concurrency": args.concurrency,
        "runs": runs,
        "summary": summary,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_bench", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024, help="test file size in MiB (default: 1024)")
    parser.add_argument("--concurrency", type=int, default=4, help="chunks in flight (default: the CLI's, 4)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default: 3)")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if min(args.size_mib, args.concurrency, args.repeat) < 1:
        parser.error("--size-mib, --concurrency and --repeat must be at least 1")
    args.targets, args.server_env = ("real",), []
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    results: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment()}
    results |= run_sitting(args, sitting)
    summary = results["summary"]
    print()
    for target in ("bench", "cli"):
        row = summary[target]
        print(
            f"{target:>5}: median {row['median_mib_per_s']:.1f} MiB/s, client {row['client_cpu_seconds_per_gib']:.2f} "
            f"CPU-s/GiB, server {row['server_cpu_seconds_per_gib']:.2f} CPU-s/GiB"
        )
    print(f"cli / bench = {summary['cli_over_bench']:.2f}")
    print(f"\nresults written to {save(results, prefix='cli-')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
