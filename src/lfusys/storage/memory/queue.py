"""The event queue in this process's memory, with the SQS semantics of the local SQLite queue.

A received message is hidden for its visibility timeout and comes back if it is not deleted; one
received more than ``max_receives`` times is moved to the dead letters. Each step looks and changes
without awaiting in between, so on the one event loop it is atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import secrets
import time
from collections.abc import Sequence

import msgspec
from msgspec.structs import replace

from lfusys.storage.ports import DeadLetter, QueueDepth, QueueMessage


class _Message(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    body: str
    visible_at: float
    """Unix time."""
    receive_count: int = 0
    receipt: str | None = None


class MemoryEventQueue:
    """At-least-once queue of storage events; long polls are woken as soon as a message may be had."""

    def __init__(self, *, max_receives: int) -> None:
        self._max_receives = max_receives
        self._messages: dict[int, _Message] = {}
        self._dead: dict[int, DeadLetter] = {}
        self._last_id = 0
        self._changed = asyncio.Event()

    async def send(self, body: str) -> None:
        self._last_id += 1
        self._messages[self._last_id] = _Message(id=self._last_id, body=body, visible_at=time.time())
        self._changed.set()

    async def receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[QueueMessage]:
        deadline = time.monotonic() + wait_seconds
        while True:
            # Cleared before looking, so a message sent while we wait still wakes the wait below.
            self._changed.clear()
            messages = self._receive_visible(max_messages, visibility_timeout)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            # Nothing else wakes us when a hidden message's timeout runs out: wait no longer than that.
            now = time.time()
            hidden_until = (message.visible_at for message in self._messages.values() if message.visible_at > now)
            soonest = min(hidden_until, default=None)
            if soonest is not None:
                remaining = min(remaining, soonest - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)

    def _receive_visible(self, max_messages: int, visibility_timeout: float) -> list[QueueMessage]:
        now = time.time()
        visible = (message for message in self._messages.values() if message.visible_at <= now)
        received: list[QueueMessage] = []
        for message in heapq.nsmallest(max_messages, visible, key=lambda message: (message.visible_at, message.id)):
            if message.receive_count >= self._max_receives:
                del self._messages[message.id]
                self._dead[message.id] = DeadLetter(
                    id=str(message.id), body=message.body, receive_count=message.receive_count, dead_at=now
                )
                continue
            receipt = f"{message.id}:{secrets.token_urlsafe(12)}"
            count = message.receive_count + 1
            self._messages[message.id] = replace(
                message, receive_count=count, visible_at=now + visibility_timeout, receipt=receipt
            )
            received.append(QueueMessage(id=str(message.id), receipt=receipt, body=message.body, receive_count=count))
        return received

    def _held(self, receipt: str) -> _Message | None:
        """The message ``receipt`` was handed out with, unless it was received again since."""
        head, _, _ = receipt.partition(":")
        message = self._messages.get(int(head)) if head.isdigit() else None
        return message if message is not None and message.receipt == receipt else None

    async def delete(self, *receipts: str) -> None:
        for receipt in receipts:
            message = self._held(receipt)
            if message is not None:
                del self._messages[message.id]

    async def extend_visibility(self, receipt: str, seconds: float) -> None:
        message = self._held(receipt)
        if message is not None:
            self._messages[message.id] = replace(message, visible_at=time.time() + seconds)
            self._changed.set()

    async def depth(self) -> QueueDepth:
        now = time.time()
        visible = sum(1 for message in self._messages.values() if message.visible_at <= now)
        return QueueDepth(visible=visible, in_flight=len(self._messages) - visible, dead_letters=len(self._dead))

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        return [self._dead[message_id] for message_id in heapq.nsmallest(limit, self._dead)]

    async def redrive(self, ids: Sequence[str] | None) -> int:
        wanted = [int(i) for i in ids if i.isdigit()] if ids is not None else list(self._dead)
        now = time.time()
        redriven = 0
        for message_id in wanted:
            letter = self._dead.pop(message_id, None)
            if letter is not None:
                # Its old id again, so the worker's logs of both lives name the same message.
                self._messages[message_id] = _Message(id=message_id, body=letter.body, visible_at=now)
                redriven += 1
        if redriven:
            self._changed.set()
        return redriven
