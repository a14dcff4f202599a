"""What only the SQLite event queue has to take care of: its transactions run in the database thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lfusys.storage.local.database import Database, apply_migrations
from lfusys.storage.local.queue import LocalEventQueue
from lfusys.storage.ports import QueueMessage

pytestmark = pytest.mark.local_only("the SQLite queue's own transactions")


async def test_a_receive_cancelled_while_its_transaction_answers_gives_its_messages_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = await Database.open(tmp_path / "queue.sqlite3")
    await apply_migrations(database)
    queue = LocalEventQueue(database, max_receives=5)
    await queue.send("chunk event")
    took = asyncio.Event()
    take = queue._receive_visible

    async def slow_to_answer(max_messages: int, visibility_timeout: float) -> list[QueueMessage]:
        # The transaction has committed in the database thread; the answer is on its way back.
        messages = await take(max_messages, visibility_timeout)
        took.set()
        await asyncio.sleep(0.5)
        return messages

    monkeypatch.setattr(queue, "_receive_visible", slow_to_answer)
    try:
        receiving = asyncio.create_task(queue.receive(10, 1, 30))
        await took.wait()
        receiving.cancel()  # a worker stopping
        with pytest.raises(asyncio.CancelledError):
            await receiving
        monkeypatch.undo()

        (message,) = await queue.receive(10, 0, 30)
        assert (message.body, message.receive_count) == ("chunk event", 2)
    finally:
        await database.close()
