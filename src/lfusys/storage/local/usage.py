"""The per-owner usage record, changed only inside the transaction of the change that causes it."""

from __future__ import annotations

import aiosqlite


async def change_usage(connection: aiosqlite.Connection, owner_id: str, delta: int) -> None:
    await connection.execute(
        "INSERT INTO usage (owner_id, bytes) VALUES (?, MAX(?, 0))"
        " ON CONFLICT (owner_id) DO UPDATE SET bytes = MAX(bytes + ?, 0)",
        (owner_id, delta, delta),
    )
