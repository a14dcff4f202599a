"""tus-js-client uploading one file to LFUSYS's tus endpoint and to @tus/server with its file store, in
one sitting, in turns (LFUSYS, @tus/server, LFUSYS, …), single stream and with ``parallelUploads``.

* The client is the same Node script for both (``bench/js/tus-client.mjs``), ``chunkSize: Infinity``;
  its clock runs from ``start()`` until the last request is answered. Single stream: one ``tus.Upload``
  of the whole file. Parallel (``P`` > 1): LFUSYS gets one ``tus.Upload`` with ``parallelUploads: P``
  (P partial uploads, then a final one joining them: the concatenation extension). @tus/server has no
  concatenation (its file store refuses ``Upload-Concat``), so its parallel peer is what its users can
  do instead: P separate uploads of the file's P slices at once (P files, not one). For LFUSYS the
  time from ``start()`` until the file is *ready* (assembled, listed, downloadable) is reported too
  (polled every 10 ms); @tus/server's file is ready when its last PATCH is answered.
* LFUSYS: ``lfusys serve`` on the embedded default, a personal API token. It verifies every chunk's
  SHA-256 and keeps the upload resumable across replicas; @tus/server's file store does neither.
* @tus/server: ``bench/js/tus-node-server.mjs`` (a bench-only dependency: ``npm ci`` in ``bench/js``
  runs on first use).

Every LFUSYS file is checked (size and checksum) and deleted after its run, every @tus/server file has
its size checked and is deleted. Figures are printed and saved to ``bench/results/tus-<time>.json``;
never asserted.

    .venv/bin/python -m bench.tus_bench --size-mib 1024 --repeat 3 --parallel 1 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
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

JS = Path(__file__).resolve().parent / "js"
TARGETS = ("lfusys", "tus-node")


def ensure_node_peers() -> str:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("the tus benchmark needs Node.js")
    if not (JS / "node_modules" / "@tus" / "server").is_dir():
        print("installing @tus/server and tus-js-client into bench/js/node_modules …", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS, check=True)
    return node


async def tus_client(
    node: str, endpoint: str, data: TestFile, parallel: int, mode: str, token: str | None
) -> dict[str, Any]:
    """One timed run of ``bench/js/tus-client.mjs``: ``mode`` "concat" (parallelUploads) or "separate"."""
    argv = [
        node,
        str(JS / "tus-client.mjs"),
        endpoint,
        str(data.path),
        str(parallel),
        mode,
        *([token] if token else []),
    ]
    finished = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, check=False)
    lines = finished.stdout.strip().splitlines()
    outcome: dict[str, Any] = json.loads(lines[-1]) if lines else {"error": finished.stderr.strip()}
    if "error" in outcome:
        raise RuntimeError(f"tus-js-client failed: {outcome['error']}")
    return outcome


async def lfusys_run(node: str, real: RealServer, token: str, data: TestFile, parallel: int) -> dict[str, Any]:
    endpoint = f"http://{HOST}:{real.server.port}/api/v1/tus/"
    await real.call("POST", "/auth/refresh", 200)  # off the clock: the control connection's session
    with RunWatch(real.server.pid).running() as watch:
        outcome = await tus_client(node, endpoint, data, parallel, "concat", token)
        [url] = outcome["urls"]
        file_id = await real._completed(str(url).rstrip("/").rsplit("/", 1)[1])
        ready = time.time() - outcome["started_at"]  # from the client's start(), as its own clock
    await real.verify_and_delete(file_id, data)
    return {
        "target": "lfusys",
        "client_seconds": outcome["seconds"],
        "ready_seconds": ready,
        "finalize_seconds": ready - outcome["seconds"],
        "mib_per_s": data.size / MiB / outcome["seconds"],
        "ready_mib_per_s": data.size / MiB / ready,
        "server_cpu_seconds": watch.server_user_seconds + watch.server_system_seconds,
        "client_cpu_seconds": outcome["cpu_seconds"],
    }


async def tus_node_run(
    node: str, peer: servers.Server, directory: Path, data: TestFile, parallel: int
) -> dict[str, Any]:
    endpoint = f"http://{HOST}:{peer.port}/files/"
    with RunWatch(peer.pid).running() as watch:
        outcome = await tus_client(node, endpoint, data, parallel, "separate", None)
    sizes = await asyncio.to_thread(_check_and_empty, directory)
    slice_size = data.size // parallel
    expected = sorted([slice_size] * (parallel - 1) + [data.size - slice_size * (parallel - 1)])
    if sizes != expected:
        raise RuntimeError(f"@tus/server stored {sizes}, expected {expected}")
    return {
        "target": "tus-node",
        "client_seconds": outcome["seconds"],
        "ready_seconds": outcome["seconds"],
        "finalize_seconds": 0.0,
        "mib_per_s": data.size / MiB / outcome["seconds"],
        "ready_mib_per_s": data.size / MiB / outcome["seconds"],
        "server_cpu_seconds": watch.server_user_seconds + watch.server_system_seconds,
        "client_cpu_seconds": outcome["cpu_seconds"],
    }


async def sitting(args: argparse.Namespace, workdir: Path, started: list[servers.Server]) -> dict[str, Any]:
    node = ensure_node_peers()
    [lfusys_process] = started
    await servers.wait_ready(lfusys_process, "/health/ready")
    real = RealServer(lfusys_process)
    await real.sign_up()
    made = await real.call("POST", "/tokens", 201, {"name": "bench", "scopes": ["upload", "read", "delete"]})
    token = str(made.json()["token"])
    size = args.size_mib * MiB
    print(f"making a {args.size_mib} MiB test file …", flush=True)
    data = make_test_file(workdir / "test-file.bin", size, await real.chosen_chunk_size(size))
    peer_dir = workdir / "tus-node-data"
    peer_dir.mkdir()
    port = servers.free_port()
    peer = servers.start(
        "tus-node", [node, str(JS / "tus-node-server.mjs"), str(port), str(peer_dir)], {}, port,
        workdir / "tus-node.log", JS,
    )  # fmt: skip
    runs: list[dict[str, Any]] = []
    try:
        await servers.wait_ready(peer, "/health")
        for parallel in args.parallel:  # warm-up, not counted
            await lfusys_run(node, real, token, data, parallel)
            await tus_node_run(node, peer, peer_dir, data, parallel)
        for attempt in range(1, args.repeat + 1):
            for parallel in args.parallel:
                for run in (
                    await lfusys_run(node, real, token, data, parallel),
                    await tus_node_run(node, peer, peer_dir, data, parallel),
                ):
                    run |= {"attempt": attempt, "parallel": parallel}
                    runs.append(run)
                    print(
                        f"{run['target']:>8} P={parallel} #{attempt}: {run['mib_per_s']:7.1f} MiB/s uploaded, "
                        f"{run['ready_mib_per_s']:7.1f} MiB/s ready, server CPU {run['server_cpu_seconds']:5.2f} s, "
                        f"client CPU {run['client_cpu_seconds']:5.2f} s",
                        flush=True,
                    )
    finally:
        servers.stop(peer)
        await real.control.close()
    return {"size_bytes": size, "runs": runs, "summary": summarize(runs, size)}


def _check_and_empty(directory: Path) -> list[int]:
    """The sizes of the uploads @tus/server stored (not its .json descriptions); then delete everything."""
    sizes = sorted(path.stat().st_size for path in directory.iterdir() if not path.name.endswith(".json"))
    for path in directory.iterdir():
        path.unlink()
    return sizes


def summarize(runs: list[dict[str, Any]], size: int) -> dict[str, Any]:
    gib = size / 1024**3
    summary: dict[str, Any] = {}
    for parallel in sorted({run["parallel"] for run in runs}):
        row: dict[str, Any] = {}
        for target in TARGETS:
            mine = [run for run in runs if run["target"] == target and run["parallel"] == parallel]
            row[target] = {
                "median_mib_per_s": statistics.median(run["mib_per_s"] for run in mine),
                "median_ready_mib_per_s": statistics.median(run["ready_mib_per_s"] for run in mine),
                "server_cpu_seconds_per_gib": statistics.median(run["server_cpu_seconds"] for run in mine) / gib,
            }
        row["lfusys_over_tus_node"] = row["lfusys"]["median_mib_per_s"] / row["tus-node"]["median_mib_per_s"]
        row["lfusys_ready_over_tus_node"] = (
            row["lfusys"]["median_ready_mib_per_s"] / row["tus-node"]["median_mib_per_s"]
        )
        summary[f"parallel_{parallel}"] = row
    if "parallel_1" in summary:  # @tus/server's one way to send one file, against LFUSYS's every way
        single = summary["parallel_1"]["tus-node"]["median_mib_per_s"]
        for row in summary.values():
            row["lfusys_over_tus_node_single_stream"] = row["lfusys"]["median_mib_per_s"] / single
            row["lfusys_ready_over_tus_node_single_stream"] = row["lfusys"]["median_ready_mib_per_s"] / single
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tus_bench", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024, help="test file size in MiB (default: 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default: 3)")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4], help="parallelUploads (default: 1 4)")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if min(args.size_mib, args.repeat, *args.parallel) < 1:
        parser.error("--size-mib, --repeat and --parallel must be at least 1")
    args.targets, args.server_env = ("real",), []
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    results: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment()}
    results |= run_sitting(args, sitting)
    print()
    for name, row in results["summary"].items():
        print(
            f"{name}: lfusys {row['lfusys']['median_mib_per_s']:.1f} MiB/s uploaded "
            f"({row['lfusys']['median_ready_mib_per_s']:.1f} ready), @tus/server "
            f"{row['tus-node']['median_mib_per_s']:.1f} MiB/s; lfusys / @tus/server = "
            f"{row['lfusys_over_tus_node']:.2f} uploaded, {row['lfusys_ready_over_tus_node']:.2f} ready"
            + (
                f"; over @tus/server's single stream {row['lfusys_over_tus_node_single_stream']:.2f} uploaded, "
                f"{row['lfusys_ready_over_tus_node_single_stream']:.2f} ready"
                if "lfusys_over_tus_node_single_stream" in row
                else ""
            )
        )
    print(f"\nresults written to {save(results, prefix='tus-')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
