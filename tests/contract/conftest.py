"""Every adapter of a backend runs the same contract tests, through the backend factory.

To add a backend, add its name to :data:`tests.support.BACKENDS` (the one list of backends the whole suite
runs on): the fixture opens it as the app would. A KV is independent of the backend: the KV contract runs
on each KV adapter instead (the ``kv`` fixture of ``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lfusys.storage.backend import open_backend, server_keys
from lfusys.storage.ports import Backend
from tests.support import BACKENDS, FakeClock, drain_events, make_settings

MAX_RECEIVES = 2
"""Deliveries of one message before the contract backends dead-letter it."""


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Backend]:
    settings = make_settings(tmp_path / "data", backend=request.param, queue_max_receives=MAX_RECEIVES)
    async with open_backend(settings, server_keys(settings), clock) as opened:
        if opened.name == "aws":
            await announced(opened)  # S3's test message, sent when the bucket's notifications were set up
        yield opened


async def announced(backend: Backend) -> list[str]:
    """The storage events the backend has queued since this was last asked (taken off the queue).

    Events go out beside a store's answer, not before it (as S3's do), so this waits a moment for
    them: until a short long poll comes back empty. The test message S3 sends when the bucket's
    notifications are set up is left out.
    """
    return await drain_events(backend.queue)


async def dead_bodies(backend: Backend) -> list[str]:
    return [letter.body for letter in await backend.queue.dead_letters(100)]
