"""Debian's Chromium as the benchmark and the browser tests launch it.

The flags keep it headless and quiet: without the background-networking ones it keeps trying to
reach Google's hosts, which this machine's closed network refuses. Playwright drives it through
``executable_path``; no browser is ever downloaded.
"""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
