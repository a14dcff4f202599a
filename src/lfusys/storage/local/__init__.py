"""The embedded backend: SQLite metadata (and, later, filesystem blobs and a SQLite event queue)."""

from lfusys.storage.local.database import Database, apply_migrations
from lfusys.storage.local.metadata import SqliteMetadataStore

__all__ = ["Database", "SqliteMetadataStore", "apply_migrations"]
