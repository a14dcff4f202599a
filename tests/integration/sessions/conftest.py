"""The upload-session tests' client: signed in, on an app with small chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import AppFactory
from tests.support import BASE_URL, SMALL_CHUNKS, AppClient, signed_in


@pytest.fixture
async def client(app_factory: AppFactory) -> AsyncIterator[AppClient]:
    """A client of an app with :data:`~tests.support.SMALL_CHUNKS`, signed in as ada@example.com."""
    async with AppClient(app_factory(**SMALL_CHUNKS), base_url=BASE_URL) as c:
        await signed_in(c)
        yield c
