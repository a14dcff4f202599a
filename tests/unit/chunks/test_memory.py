"""Freed memory is handed back once a burst of chunks is over, never while chunks stream in."""

from __future__ import annotations

import asyncio
import contextlib
import platform
from collections.abc import AsyncIterator, Callable

import pytest

from lfusys.chunks import memory
from lfusys.chunks.admission import ChunkAdmission
from lfusys.chunks.memory import release_after_bursts, trim_allocator
from tests.support import eventually

INTERVAL = 0.02


async def soon(condition: Callable[[], object]) -> None:
    """Wait until ``condition()`` holds (a few intervals usually; at most 5 s on a busy machine)."""

    async def check() -> bool:
        return bool(condition())

    await eventually(check, within=5)


@contextlib.asynccontextmanager
async def releasing(admission: ChunkAdmission, trims: list[int]) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        release_after_bursts(admission, stop, interval=INTERVAL, trim=lambda: trims.append(admission.in_flight))
    )
    await asyncio.sleep(0)  # it has taken note of what came in so far
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 1)


async def test_after_a_burst_the_allocator_is_trimmed_once() -> None:
    admission = ChunkAdmission(total=8, per_user=8)
    trims: list[int] = []
    async with releasing(admission, trims):
        for _ in range(3):
            with admission.admit("ada"):
                pass
        await soon(lambda: trims)
        await asyncio.sleep(INTERVAL * 4)  # later looks find nothing new

    assert trims == [0]


async def test_no_trim_without_chunks_or_while_one_streams() -> None:
    admission = ChunkAdmission(total=8, per_user=8)
    trims: list[int] = []
    async with releasing(admission, trims):
        await asyncio.sleep(INTERVAL * 4)
        assert trims == []  # nothing came in

        with admission.admit("ada"):
            await asyncio.sleep(INTERVAL * 4)
            assert trims == []  # a chunk is streaming

        await soon(lambda: trims)
    assert trims == [0]


async def test_a_failing_trim_is_logged_and_the_next_burst_is_trimmed_again() -> None:
    admission = ChunkAdmission(total=8, per_user=8)
    calls = 0

    def trim() -> None:
        nonlocal calls
        calls += 1
        raise OSError("no")

    stop = asyncio.Event()
    task = asyncio.create_task(release_after_bursts(admission, stop, interval=INTERVAL, trim=trim))
    await asyncio.sleep(0)
    with admission.admit("ada"):
        pass
    await soon(lambda: calls == 1)
    with admission.admit("ada"):
        pass
    await soon(lambda: calls == 2)
    stop.set()
    await asyncio.wait_for(task, 1)

    assert calls == 2


def test_on_glibc_the_allocator_can_be_trimmed() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert memory._MALLOC_TRIM is not None
    trim_allocator()
