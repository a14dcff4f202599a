"""The behaviour every EventQueue adapter must have (SQS semantics)."""

from __future__ import annotations

import asyncio

from tests.contract.conftest import QueueBackend


async def test_a_sent_message_is_received_once_while_invisible(queue_backend: QueueBackend) -> None:
    await queue_backend.send("hello")

    (message,) = await queue_backend.queue.receive(10, 0.1, 30)
    again = await queue_backend.queue.receive(10, 0.1, 30)

    assert message.body == "hello"
    assert message.receive_count == 1
    assert again == []


async def test_a_deleted_message_never_comes_back(queue_backend: QueueBackend) -> None:
    await queue_backend.send("hello")
    (message,) = await queue_backend.queue.receive(10, 0.1, 0.05)

    await queue_backend.queue.delete(message.receipt)
    await asyncio.sleep(0.1)

    assert await queue_backend.queue.receive(10, 0.1, 30) == []


async def test_an_undeleted_message_comes_back_after_its_visibility_timeout(queue_backend: QueueBackend) -> None:
    await queue_backend.send("hello")
    await queue_backend.queue.receive(10, 0.1, 0.05)
    await asyncio.sleep(0.1)

    (message,) = await queue_backend.queue.receive(10, 0.1, 30)

    assert message.receive_count == 2


async def test_extending_visibility_keeps_it_hidden_and_zero_releases_it(queue_backend: QueueBackend) -> None:
    await queue_backend.send("hello")
    (message,) = await queue_backend.queue.receive(10, 0.1, 0.05)

    await queue_backend.queue.extend_visibility(message.receipt, 30)
    await asyncio.sleep(0.1)
    assert await queue_backend.queue.receive(10, 0.1, 30) == []

    await queue_backend.queue.extend_visibility(message.receipt, 0)
    assert [m.body for m in await queue_backend.queue.receive(10, 0.1, 30)] == ["hello"]


async def test_a_stale_receipt_cannot_delete_a_redelivered_message(queue_backend: QueueBackend) -> None:
    await queue_backend.send("hello")
    (first,) = await queue_backend.queue.receive(10, 0.1, 0.05)
    await asyncio.sleep(0.1)
    (second,) = await queue_backend.queue.receive(10, 0.1, 0.05)

    await queue_backend.queue.delete(first.receipt)
    await asyncio.sleep(0.1)

    # Still there: delivered again, or (having used up its receives) moved to the dead letters.
    redelivered = [m.body for m in await queue_backend.queue.receive(10, 0.1, 30)]
    assert redelivered + await queue_backend.dead_letters() == ["hello"]
    assert second.receipt != first.receipt


async def test_a_message_received_too_often_is_dead_lettered(queue_backend: QueueBackend) -> None:
    await queue_backend.send("poison")
    for _ in range(queue_backend.max_receives):
        assert len(await queue_backend.queue.receive(10, 0.1, 0.01)) == 1
        await asyncio.sleep(0.03)

    assert await queue_backend.queue.receive(10, 0.1, 0.01) == []
    assert await queue_backend.dead_letters() == ["poison"]


async def test_batches_are_bounded_and_in_order(queue_backend: QueueBackend) -> None:
    for i in range(5):
        await queue_backend.send(f"m{i}")

    first = await queue_backend.queue.receive(3, 0.1, 30)
    rest = await queue_backend.queue.receive(10, 0.1, 30)

    assert [m.body for m in first] == ["m0", "m1", "m2"]
    assert [m.body for m in rest] == ["m3", "m4"]


async def test_a_long_poll_returns_as_soon_as_a_message_arrives(queue_backend: QueueBackend) -> None:
    async def send_later() -> None:
        await asyncio.sleep(0.2)
        await queue_backend.send("late")

    sender = asyncio.create_task(send_later())
    messages = await queue_backend.queue.receive(10, 5, 30)
    await sender

    assert [m.body for m in messages] == ["late"]


async def test_an_empty_long_poll_returns_nothing(queue_backend: QueueBackend) -> None:
    assert await queue_backend.queue.receive(10, 0.05, 30) == []
