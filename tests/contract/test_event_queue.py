"""The behaviour every EventQueue adapter must have (SQS semantics)."""

from __future__ import annotations

import asyncio

from lfusys.storage.ports import Backend, QueueDepth, QueueMessage
from tests.contract.conftest import MAX_RECEIVES, dead_bodies


async def test_a_sent_message_is_received_once_while_invisible(backend: Backend) -> None:
    await backend.queue.send("hello")

    (message,) = await backend.queue.receive(10, 0.1, 30)
    again = await backend.queue.receive(10, 0.1, 30)

    assert message.body == "hello"
    assert message.receive_count == 1
    assert again == []


async def test_a_deleted_message_never_comes_back(backend: Backend) -> None:
    await backend.queue.send("hello")
    (message,) = await backend.queue.receive(10, 0.1, 0.05)

    await backend.queue.delete(message.receipt)
    await asyncio.sleep(0.1)

    assert await backend.queue.receive(10, 0.1, 30) == []


async def test_an_undeleted_message_comes_back_after_its_visibility_timeout(backend: Backend) -> None:
    await backend.queue.send("hello")
    await backend.queue.receive(10, 0.1, 0.05)
    await asyncio.sleep(0.1)

    (message,) = await backend.queue.receive(10, 0.1, 30)

    assert message.receive_count == 2


async def test_extending_visibility_keeps_it_hidden_and_zero_releases_it(backend: Backend) -> None:
    await backend.queue.send("hello")
    (message,) = await backend.queue.receive(10, 0.1, 0.05)

    await backend.queue.extend_visibility(message.receipt, 30)
    await asyncio.sleep(0.1)
    assert await backend.queue.receive(10, 0.1, 30) == []

    await backend.queue.extend_visibility(message.receipt, 0)
    assert [m.body for m in await backend.queue.receive(10, 0.1, 30)] == ["hello"]


async def test_a_stale_receipt_cannot_delete_a_redelivered_message(backend: Backend) -> None:
    await backend.queue.send("hello")
    (first,) = await backend.queue.receive(10, 0.1, 0.05)
    await asyncio.sleep(0.1)
    (second,) = await backend.queue.receive(10, 0.1, 0.05)

    await backend.queue.delete(first.receipt)
    await asyncio.sleep(0.1)

    # Still there: delivered again, or (having used up its receives) moved to the dead letters.
    redelivered = [m.body for m in await backend.queue.receive(10, 0.1, 30)]
    assert redelivered + await dead_bodies(backend) == ["hello"]
    assert second.receipt != first.receipt


async def test_a_message_received_too_often_is_dead_lettered(backend: Backend) -> None:
    await backend.queue.send("poison")
    for _ in range(MAX_RECEIVES):
        assert len(await backend.queue.receive(10, 0.1, 0.01)) == 1
        await asyncio.sleep(0.03)

    assert await backend.queue.receive(10, 0.1, 0.01) == []
    assert await dead_bodies(backend) == ["poison"]


async def dead_letter(backend: Backend, *bodies: str) -> None:
    """Send ``bodies`` and receive them until they are dead-lettered."""
    for body in bodies:
        await backend.queue.send(body)
    await use_up_receives(backend, *bodies)


async def use_up_receives(backend: Backend, *bodies: str) -> None:
    """Receive the queued ``bodies`` (and nothing else) without deleting them until they are dead-lettered."""
    for _ in range(MAX_RECEIVES):
        assert sorted(m.body for m in await backend.queue.receive(10, 0.5, 0.01)) == sorted(bodies)
        await asyncio.sleep(0.03)
    assert await backend.queue.receive(10, 0.1, 0.01) == []
    assert sorted(await dead_bodies(backend)) == sorted(bodies)


async def test_a_redriven_dead_letter_is_received_again_and_no_longer_listed(backend: Backend) -> None:
    await dead_letter(backend, "poison")

    assert await backend.queue.redrive(None) == 1

    assert await dead_bodies(backend) == []
    (message,) = await backend.queue.receive(10, 1, 30)
    assert (message.body, message.receive_count) == ("poison", 1)
    assert await backend.queue.redrive(None) == 0


async def test_only_the_dead_letters_named_are_redriven(backend: Backend) -> None:
    await dead_letter(backend, "first", "second")
    (named,) = [letter for letter in await backend.queue.dead_letters(10) if letter.body == "second"]

    assert await backend.queue.redrive(["no-such-letter", named.id]) == 1

    assert await dead_bodies(backend) == ["first"]
    assert [m.body for m in await backend.queue.receive(10, 1, 30)] == ["second"]
    assert await backend.queue.redrive([]) == 0
    assert await dead_bodies(backend) == ["first"]


async def test_a_redriven_message_that_fails_again_is_dead_lettered_again(backend: Backend) -> None:
    await dead_letter(backend, "poison")
    await backend.queue.redrive(None)

    await use_up_receives(backend, "poison")


async def test_the_depth_counts_waiting_in_flight_and_dead_messages(backend: Backend) -> None:
    assert await backend.queue.depth() == QueueDepth(visible=0, in_flight=0, dead_letters=0)
    await dead_letter(backend, "poison")
    for body in ("one", "two", "three"):
        await backend.queue.send(body)
    await backend.queue.receive(1, 0.5, 30)

    # SQS's counts are approximate and may lag a moment behind.
    for _ in range(50):
        if (depth := await backend.queue.depth()) == QueueDepth(visible=2, in_flight=1, dead_letters=1):
            break
        await asyncio.sleep(0.1)
    assert depth == QueueDepth(visible=2, in_flight=1, dead_letters=1)


async def test_batches_are_bounded_and_in_order(backend: Backend) -> None:
    for i in range(5):
        await backend.queue.send(f"m{i}")

    first = await backend.queue.receive(3, 0.1, 30)
    rest = await backend.queue.receive(10, 0.1, 30)

    assert [m.body for m in first] == ["m0", "m1", "m2"]
    assert [m.body for m in rest] == ["m3", "m4"]


async def test_messages_sent_at_once_are_each_received_once(backend: Backend) -> None:
    bodies = {f"event {i}" for i in range(200)}
    await asyncio.gather(*(backend.queue.send(body) for body in bodies))

    received = [m.body for m in await _receive_all(backend)]

    assert sorted(received) == sorted(bodies)


async def _receive_all(backend: Backend) -> list[QueueMessage]:
    received: list[QueueMessage] = []
    while batch := await backend.queue.receive(10, 0.1, 30):
        received += batch
    return received


async def test_a_long_poll_returns_as_soon_as_a_message_arrives(backend: Backend) -> None:
    async def send_later() -> None:
        await asyncio.sleep(0.2)
        await backend.queue.send("late")

    sender = asyncio.create_task(send_later())
    messages = await backend.queue.receive(10, 5, 30)
    await sender

    assert [m.body for m in messages] == ["late"]


async def test_an_empty_long_poll_returns_nothing(backend: Backend) -> None:
    assert await backend.queue.receive(10, 0.05, 30) == []


async def test_a_cancelled_receive_leaves_no_message_hidden(backend: Backend) -> None:
    # A stopping worker cancels its receive at whatever point it has reached.
    for delay in (0, 0.0001, 0.0005, 0.001, 0.002, 0.005):
        await backend.queue.send(f"m{delay}")
        receiving = asyncio.create_task(backend.queue.receive(10, 1, 30))
        await asyncio.sleep(delay)
        receiving.cancel()
        try:
            delivered = await receiving
        except asyncio.CancelledError:
            delivered = []  # cancelled: whatever it took must be back on the queue
        if not delivered:
            delivered = await backend.queue.receive(10, 0.5, 30)

        assert [message.body for message in delivered] == [f"m{delay}"]
        await backend.queue.delete(delivered[0].receipt)
