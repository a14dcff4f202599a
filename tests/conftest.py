from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from lfusys.app import create_app
from lfusys.settings import Settings
from tests.support import BASE_URL, FakeClock, LiveServer, make_settings

AppFactory = Callable[..., Litestar]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Litestar:
    return create_app(settings, clock)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def app_factory(data_dir: Path, clock: FakeClock) -> AppFactory:
    """Build apps over the same data directory (a restart), with setting overrides, on the test's clock."""

    def build(**overrides: Any) -> Litestar:
        return create_app(make_settings(data_dir, **overrides), clock)

    return build


@pytest.fixture
def live_server(tmp_path: Path, data_dir: Path) -> Iterator[LiveServer]:
    server = LiveServer(data_dir, tmp_path / "server.log")
    yield server
    server.stop()


@pytest.fixture
def settings_db(settings: Settings) -> Path:
    return settings.database_path
