"""Every metadata adapter runs the same contract tests.

To add a backend, add its name to ``BACKENDS`` and a branch in ``metadata_store`` that yields an
opened, empty store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lfusys.storage.local import Database, SqliteMetadataStore, apply_migrations
from lfusys.storage.ports import MetadataStore

BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
async def metadata_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    if request.param == "sqlite":
        database = await Database.open(tmp_path / "contract.sqlite3")
        await apply_migrations(database)
        try:
            yield SqliteMetadataStore(database)
        finally:
            await database.close()
    else:  # pragma: no cover - a new backend must be wired here
        raise AssertionError(f"no fixture for backend {request.param}")
