"""The per-owner usage record, changed only inside the transaction of the change that causes it."""

from __future__ import annotations

import sqlite3


def change_usage(connection: sqlite3.Connection, owner_id: str, delta: int) -> None:
    connection.execute(
        "INSERT INTO usage (owner_id, bytes) VALUES (?, MAX(?, 0))"
        " ON CONFLICT (owner_id) DO UPDATE SET bytes = MAX(bytes + ?, 0)",
        (owner_id, delta, delta),
    )
