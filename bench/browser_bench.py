"""Upload throughput of the web app's engine in Chromium, next to the Python benchmark client.

One sitting against one ``lfusys serve`` (serving the built web app): for each repeat, the Python
client (``bench.upload_bench``'s) uploads the test file with C chunks in flight, then headless
Chromium uploads the same file through the Upload page with the engine's default pool. Both do the
same work on the clock: the Python client reads and hashes each chunk just before sending it, as
the browser's engine does in its Web Workers. The browser's clock runs from handing the file to the
page to the page showing "completed" (which it only does when the server says so).

    .venv/bin/python -m bench.browser_bench --size-mib 1024 --repeat 2

Needs the web app built (``./scripts/bootstrap``) and Debian's Chromium (``/usr/bin/chromium``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, async_playwright

from bench import servers
from bench.chromium import CHROMIUM, CHROMIUM_ARGS
from bench.common import NO_API_RATE_LIMIT, REPO, save, workspace
from bench.servers import HOST, MiB, RunWatch
from bench.upload_bench import DEFAULT_CHUNK_SIZE, RealServer, TestFile, make_test_file

WEB_DIST = REPO / "web" / "dist"


async def browser_sign_up(context: BrowserContext) -> None:
    """Register and sign in through the API with the browser context's cookie jar."""
    await context.request.get("/api/v1/auth/me")
    csrf = next(c["value"] for c in await context.cookies() if c["name"] == "lfusys_csrf")
    headers = {"x-csrf-token": csrf, "content-type": "application/json"}
    email, password = f"browser-{secrets.token_hex(6)}@example.com", secrets.token_urlsafe(18)
    for path, body in (
        ("/api/v1/auth/register", {"name": "Browser", "email": email, "password": password}),
        ("/api/v1/auth/login", {"email": email, "password": password}),
    ):
        response = await context.request.post(path, data=json.dumps(body), headers=headers)
        if not response.ok:
            raise RuntimeError(f"{path}: {response.status} {await response.text()}")


async def browser_run(context: BrowserContext, server: servers.Server, data: TestFile) -> dict[str, float]:
    """Upload the test file through the Upload page; seconds from picking the file to "completed"."""
    page = await context.new_page()
    try:
        await page.goto("/upload")
        picker = page.locator('[data-testid="file-input"]')
        with RunWatch(server.pid).running() as watch:
            start = time.perf_counter()
            await picker.set_input_files(str(data.path))
            done = page.locator('[data-testid^="upload-"][data-state="completed"]')
            await done.wait_for(timeout=600_000)
            stop = time.perf_counter()
        await _delete_all_files(context)
    finally:
        await page.close()
    return {
        "seconds": stop - start,
        "mib_per_s": data.size / MiB / (stop - start),
        "peak_rss_mib": watch.peak_kib / 1024,
        "server_cpu_seconds": watch.server_user_seconds + watch.server_system_seconds,
    }


async def _delete_all_files(context: BrowserContext) -> None:
    csrf = next(c["value"] for c in await context.cookies() if c["name"] == "lfusys_csrf")
    listing = await (await context.request.get("/api/v1/files?limit=100")).json()
    for record in listing["files"]:
        await context.request.delete(f"/api/v1/files/{record['id']}", headers={"x-csrf-token": csrf})


async def sitting(args: argparse.Namespace, workdir: Path, server: servers.Server) -> dict[str, Any]:
    await servers.wait_ready(server, "/health/ready")
    size = args.size_mib * MiB
    print(f"making a {args.size_mib} MiB test file …", flush=True)
    data = make_test_file(workdir / "bench.bin", size, DEFAULT_CHUNK_SIZE)
    client = RealServer(server)
    await client.sign_up()
    python_runs: list[dict[str, float]] = []
    browser_runs: list[dict[str, float]] = []
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(base_url=f"http://{HOST}:{server.port}")
        await browser_sign_up(context)
        try:
            for attempt in range(args.repeat + 1):  # the first round warms up and is not counted
                python = await client.run(data, args.concurrency, attempt, hash_on_the_clock=True)
                in_browser = await browser_run(context, server, data)
                label = "warm-up" if attempt == 0 else f"#{attempt}"
                print(
                    f"  {label}: python client C={args.concurrency} {python.mib_per_s:7.1f} MiB/s"
                    f" | chromium {in_browser['mib_per_s']:7.1f} MiB/s",
                    flush=True,
                )
                if attempt:
                    python_runs.append({"seconds": python.seconds, "mib_per_s": python.mib_per_s})
                    browser_runs.append(in_browser)
        finally:
            await browser.close()
            os.close(data.fd)
            await client.control.close()
    return {
        "size_bytes": size,
        "python_client": {"concurrency": args.concurrency, "runs": python_runs},
        "chromium": {"runs": browser_runs},
        "median_mib_per_s": {
            "python_client": statistics.median(r["mib_per_s"] for r in python_runs),
            "chromium": statistics.median(r["mib_per_s"] for r in browser_runs),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.browser_bench", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="the Python client's chunks in flight")
    args = parser.parse_args(argv)
    if not (WEB_DIST / "index.html").is_file():
        parser.error("the web app is not built: run ./scripts/bootstrap")
    with workspace(keep=False) as workdir:
        env = {key: value for key, value in os.environ.items() if not key.startswith("LFUSYS_")} | {
            "LFUSYS_DATA_DIR": str(workdir / "server-data"),
            "LFUSYS_WEB_DIR": str(WEB_DIST),
            "LFUSYS_LOG_LEVEL": "warning",
            "LFUSYS_LOG_FORMAT": "json",
            **NO_API_RATE_LIMIT,
        }
        port = servers.free_port()
        argv_ = [str(Path(sys.executable).parent / "lfusys"), "serve", "--host", HOST, "--port", str(port)]
        server = servers.start("real", argv_, env, port, workdir / "server.log", REPO)
        try:
            results = asyncio.run(sitting(args, workdir, server))
        finally:
            servers.stop(server)
    medians = results["median_mib_per_s"]
    print(
        f"\n{args.size_mib} MiB, median of {args.repeat}: python client (C={args.concurrency})"
        f" {medians['python_client']:.1f} MiB/s, chromium {medians['chromium']:.1f} MiB/s"
    )
    print(f"results written to {save(results | {'benchmark': 'browser'})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
