"""Files and folders that hold secrets or users' data are readable by the service's own user only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_directory(path: Path) -> None:
    """Create ``path`` (and its parents) as 0700, or tighten it if it exists with wider permissions."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    tighten(path, PRIVATE_DIR)


def private_file(path: Path) -> None:
    """Create ``path`` empty as 0600 unless it exists; tighten it if it is wider."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        tighten(path, PRIVATE_FILE)


def tighten(path: Path, mode: int) -> None:
    """Take away every permission bit beyond ``mode``; say so in the log when it changes anything."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode:
        path.chmod(current & mode)
        log.warning("permissions tightened", path=str(path), was=oct(current), now=oct(current & mode))
