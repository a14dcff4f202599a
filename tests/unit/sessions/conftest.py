"""The finalizer, the event worker and the janitor on the memory backend and a fake clock: leases lapse,
sessions expire and retries come due when the test moves the clock, so nothing waits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lfusys.auth.records import User
from lfusys.services import Services
from tests.support import FakeClock, opened_services, register_owner

BACKEND = "memory"


@pytest.fixture
async def services(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Services]:
    async with opened_services(tmp_path / "data", clock, BACKEND) as opened:
        yield opened


@pytest.fixture
async def owner(services: Services) -> User:
    return await register_owner(services)
