"""All SQLite-backed metadata stores over one database."""

from __future__ import annotations

from lfusys.storage.local.accounts import SqliteTokenStore, SqliteUserStore
from lfusys.storage.local.database import Database
from lfusys.storage.local.files import SqliteFileStore
from lfusys.storage.local.uploads import SqliteUploadStore
from lfusys.storage.ports import FileStore, TokenStore, UploadStore, UserStore


class SqliteMetadataStore:
    """All SQLite-backed metadata stores over one :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._users = SqliteUserStore(database)
        self._tokens = SqliteTokenStore(database)
        self._uploads = SqliteUploadStore(database)
        self._files = SqliteFileStore(database)

    @property
    def users(self) -> UserStore:
        return self._users

    @property
    def tokens(self) -> TokenStore:
        return self._tokens

    @property
    def uploads(self) -> UploadStore:
        return self._uploads

    @property
    def files(self) -> FileStore:
        return self._files

    async def ping(self) -> None:
        await self.database.fetch_one("SELECT 1")
