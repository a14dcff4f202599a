"""A durable SQLite queue with SQS semantics, fed with S3-shaped storage events.

Messages survive restarts. A received message is hidden for its visibility timeout and comes back if
it is not deleted; one received more than ``max_receives`` times is moved to the dead-letter table.
Receivers in this process are woken as soon as a message is sent; other processes poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import time
from collections.abc import Sequence

from lfusys.storage.local.database import Database
from lfusys.storage.ports import DeadLetter, QueueDepth, QueueMessage

# How often a long poll looks for messages sent by another process.
_POLL_INTERVAL = 0.5


class LocalEventQueue:
    def __init__(self, database: Database, *, max_receives: int) -> None:
        self._db = database
        self._max_receives = max_receives
        self._arrived = asyncio.Event()

    async def send(self, body: str) -> None:
        now = time.time()
        await self._db.execute(
            "INSERT INTO event_queue (body, enqueued_at, visible_at) VALUES (?, ?, ?)", (body, now, now)
        )
        self._arrived.set()

    async def receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[QueueMessage]:
        deadline = time.monotonic() + wait_seconds
        while True:
            # Cleared before looking, so a message sent while we look still wakes the wait below.
            self._arrived.clear()
            messages = await self._take_visible(max_messages, visibility_timeout)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, _POLL_INTERVAL))

    async def _take_visible(self, max_messages: int, visibility_timeout: float) -> list[QueueMessage]:
        """Take visible messages; if the caller is cancelled meanwhile, give them back at once.

        The transaction runs in the database thread and cannot be stopped halfway: without this, a
        receive cancelled at that moment (a stopping worker) would leave its messages hidden for
        their whole visibility timeout.
        """
        taking = asyncio.ensure_future(self._receive_visible(max_messages, visibility_timeout))
        try:
            return await asyncio.shield(taking)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                for message in await taking:
                    await self.extend_visibility(message.receipt, 0)
            raise

    async def _receive_visible(self, max_messages: int, visibility_timeout: float) -> list[QueueMessage]:
        now = time.time()

        def receive(connection: sqlite3.Connection) -> list[QueueMessage]:
            rows = connection.execute(
                "SELECT id, body, enqueued_at, receive_count FROM event_queue WHERE visible_at <= ?"
                " ORDER BY visible_at, id LIMIT ?",
                (now, max_messages),
            ).fetchall()
            received: list[QueueMessage] = []
            for row in rows:
                if row["receive_count"] >= self._max_receives:
                    connection.execute(
                        "INSERT INTO event_dead_letters (id, body, enqueued_at, dead_at, receive_count)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (row["id"], row["body"], row["enqueued_at"], now, row["receive_count"]),
                    )
                    connection.execute("DELETE FROM event_queue WHERE id = ?", (row["id"],))
                    continue
                receipt = f"{row['id']}:{secrets.token_urlsafe(12)}"
                connection.execute(
                    "UPDATE event_queue SET receive_count = receive_count + 1, visible_at = ?, receipt = ?"
                    " WHERE id = ?",
                    (now + visibility_timeout, receipt, row["id"]),
                )
                received.append(
                    QueueMessage(
                        id=str(row["id"]), receipt=receipt, body=row["body"], receive_count=row["receive_count"] + 1
                    )
                )
            return received

        return await self._db.transaction(receive)

    async def delete(self, *receipts: str) -> None:
        if not receipts:
            return
        await self._db.transaction(  # one commit for the batch, not one per message
            lambda connection: connection.executemany(
                "DELETE FROM event_queue WHERE id = ? AND receipt = ?",
                [(_message_id(receipt), receipt) for receipt in receipts],
            )
        )

    async def extend_visibility(self, receipt: str, seconds: float) -> None:
        await self._db.execute(
            "UPDATE event_queue SET visible_at = ? WHERE id = ? AND receipt = ?",
            (time.time() + seconds, _message_id(receipt), receipt),
        )

    async def depth(self) -> QueueDepth:
        row = await self._db.fetch_one(
            "SELECT (SELECT count(*) FROM event_queue WHERE visible_at <= ?1) AS visible,"
            " (SELECT count(*) FROM event_queue WHERE visible_at > ?1) AS in_flight,"
            " (SELECT count(*) FROM event_dead_letters) AS dead_letters",
            (time.time(),),
        )
        assert row is not None
        return QueueDepth(visible=row["visible"], in_flight=row["in_flight"], dead_letters=row["dead_letters"])

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = await self._db.fetch_all("SELECT * FROM event_dead_letters ORDER BY id LIMIT ?", (limit,))
        return [
            DeadLetter(id=str(r["id"]), body=r["body"], receive_count=r["receive_count"], dead_at=r["dead_at"])
            for r in rows
        ]

    async def redrive(self, ids: Sequence[str] | None) -> int:
        now = time.time()
        wanted = None if ids is None else [int(i) for i in ids if i.isdigit()]

        def redrive(connection: sqlite3.Connection) -> int:
            # Back under its old id (never handed out again: the queue's ids only grow), received 0 times.
            moved = "INSERT INTO event_queue (id, body, enqueued_at, visible_at) SELECT id, body, enqueued_at, ?"
            if wanted is None:
                connection.execute(f"{moved} FROM event_dead_letters", (now,))
                return connection.execute("DELETE FROM event_dead_letters").rowcount
            redriven = 0
            for message_id in dict.fromkeys(wanted):
                connection.execute(f"{moved} FROM event_dead_letters WHERE id = ?", (now, message_id))
                redriven += connection.execute("DELETE FROM event_dead_letters WHERE id = ?", (message_id,)).rowcount
            return redriven

        redriven = await self._db.transaction(redrive)
        if redriven:
            self._arrived.set()
        return redriven


def _message_id(receipt: str) -> int:
    head, _, _ = receipt.partition(":")
    try:
        return int(head)
    except ValueError:
        return -1
