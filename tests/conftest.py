"""Fixtures every test package shares: the backend under test, settings, the clock, the app and a live server.

``backend_name`` is parametrized over :data:`tests.support.BACKENDS`, so every test that uses the app,
its settings or a live server runs once per backend. A test (or module, with ``pytestmark``) marked
``@pytest.mark.local_only("why")`` runs on the local backend alone; one marked
``@pytest.mark.durable_only("why")`` runs on the backends whose data outlives a process and is shared
by processes (:data:`tests.support.DURABLE_BACKENDS`: restarts, several processes on the same data);
one marked ``@pytest.mark.only_on("local", "memory", why="...")`` on the backends named.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

from lfusys.app import create_app
from lfusys.settings import Settings
from lfusys.storage.memory.kv import MemoryKV
from lfusys.storage.ports import KV
from lfusys.storage.redis import RedisKV, open_redis_kv
from tests.aws_emulator import stop_emulator
from tests.redis_server import age_keys, redis_overrides, stop_redis
from tests.support import BACKENDS, BASE_URL, DURABLE_BACKENDS, AppClient, FakeClock, LiveServer, make_settings

AppFactory = Callable[..., Litestar]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "local_only(reason): runs on the local backend only, for the reason given (one line)"
    )
    config.addinivalue_line(
        "markers", "durable_only(reason): runs on the backends whose data outlives a process (one line)"
    )
    config.addinivalue_line("markers", "only_on(*backends, why): runs on the backends named, for the reason given")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run whatever depends on ``backend_name`` on every backend (or on those a marker names)."""
    if "backend_name" not in metafunc.fixturenames:
        return
    backends = BACKENDS
    for marker, only in (("local_only", ["local"]), ("durable_only", DURABLE_BACKENDS)):
        found = metafunc.definition.get_closest_marker(marker)
        if found is not None:
            if not found.args:
                raise pytest.UsageError(f"{metafunc.definition.nodeid}: {marker} needs a reason")
            backends = [name for name in BACKENDS if name in only]
    only_on = metafunc.definition.get_closest_marker("only_on")
    if only_on is not None:
        if not only_on.kwargs.get("why") or not set(only_on.args) <= set(BACKENDS):
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: only_on needs known backends and why=")
        backends = [name for name in BACKENDS if name in only_on.args]
    # Module scope: a module-scoped fixture (a live server) may depend on it too.
    metafunc.parametrize("backend_name", backends, scope="module")


@pytest.fixture(scope="session", autouse=True)
def _aws_emulator() -> Iterator[None]:
    """Stops the AWS emulator when the session ends, if a test on the aws backend started it (it starts
    on first use, so a session without such tests never runs it)."""
    yield
    stop_emulator()


@pytest.fixture(scope="session", autouse=True)
def _redis_server() -> Iterator[None]:
    """Stops redis-server when the session ends, if a test started it (it starts on first use)."""
    yield
    stop_redis()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path, backend_name: str) -> Settings:
    return make_settings(data_dir, backend=backend_name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Litestar:
    return create_app(settings, clock)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AppClient]:
    async with AppClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def app_factory(data_dir: Path, clock: FakeClock, backend_name: str) -> AppFactory:
    """Build apps on the test's backend and clock, with setting overrides. On the local backend they share
    one data directory (a second app is a restart); on the memory backend each app has its own data."""

    def build(**overrides: Any) -> Litestar:
        return create_app(make_settings(data_dir, **{"backend": backend_name, **overrides}), clock)

    return build


@pytest.fixture
def live_server(tmp_path: Path, data_dir: Path, backend_name: str) -> Iterator[LiveServer]:
    server = LiveServer(data_dir, tmp_path / "server.log", backend=backend_name)
    yield server
    server.stop()


KV_ADAPTERS = ["memory", "redis"]

Elapse = Callable[[timedelta], Awaitable[None]]


@pytest.fixture(params=KV_ADAPTERS)
async def kv(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[KV]:
    """Each KV adapter in turn: the process's own, and Redis (keys of this test's own)."""
    if request.param == "memory":
        yield MemoryKV(clock)
        return
    settings = make_settings(tmp_path / "data", **redis_overrides(tmp_path / "data"))
    async with open_redis_kv(settings.kv) as opened:
        yield opened


@pytest.fixture
def elapse(kv: KV, clock: FakeClock) -> Elapse:
    """Let time pass for ``kv``: the test's clock moves, and Redis's keys age by as much."""

    async def elapse(delta: timedelta) -> None:
        clock.advance(delta)
        if isinstance(kv, RedisKV):
            await age_keys(kv.prefix, delta)

    return elapse
