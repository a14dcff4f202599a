"""Handing memory back to the system once a burst of chunk traffic is over.

Chunk bodies arrive in pieces of up to 64 KiB, allocated and freed by the thousand. The C allocator
(glibc) keeps freed memory in its heaps for reuse, so after a burst the process would stay near its
peak size for good. ``malloc_trim(0)`` gives every free page back. It runs when chunks have come and
gone since the last look and none is streaming: a few milliseconds in a thread, never in an
upload's way. Where the C library has no ``malloc_trim`` (musl, macOS) nothing is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
from collections.abc import AsyncIterator, Callable

import structlog

from lfusys.chunks.admission import ChunkAdmission

log = structlog.get_logger(__name__)

_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)


def trim_allocator() -> None:
    """Give the allocator's free pages back to the system (glibc ``malloc_trim(0)``)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


async def release_after_bursts(
    admission: ChunkAdmission, stop: asyncio.Event, *, interval: float, trim: Callable[[], None] = trim_allocator
) -> None:
    """Every ``interval`` seconds: trim if chunk bodies came and went since the last trim and none is
    in flight now."""
    trimmed_at = admission.admitted
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        if admission.admitted != trimmed_at and admission.in_flight == 0:
            trimmed_at = admission.admitted
            try:
                await asyncio.to_thread(trim)
            except Exception:
                log.exception("could not give freed memory back")


@contextlib.asynccontextmanager
async def releasing_memory(admission: ChunkAdmission, interval: float = 5.0) -> AsyncIterator[None]:
    """:func:`release_after_bursts` while the context is open."""
    stop = asyncio.Event()
    releasing = asyncio.create_task(release_after_bursts(admission, stop, interval=interval))
    try:
        yield
    finally:
        stop.set()
        await releasing
