"""The storage-event queue on SQS: S3 sends chunk events to it by itself; the worker reads it.

A message received ``queue_max_receives`` times is moved to the dead-letter queue by SQS's redrive
policy (set up by ``lfusys migrate``), not by this code. SQS counts time in whole seconds: a timeout
is rounded to the nearest second, and a long poll shorter than a second is a look at once and, if that
finds nothing, another when the wait is over.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog
from botocore.exceptions import ClientError

from lfusys.storage.aws.clients import LONGEST_POLL, AwsClients, error_code
from lfusys.storage.ports import DeadLetter, QueueDepth, QueueMessage

if TYPE_CHECKING:  # the client types are stubs, installed for development only
    from types_aiobotocore_sqs import SQSClient
    from types_aiobotocore_sqs.literals import MessageSystemAttributeNameType, QueueAttributeFilterType
    from types_aiobotocore_sqs.type_defs import MessageTypeDef

log = structlog.get_logger(__name__)

_BATCH = 10
"""Messages per receive, and entries per batch request (SQS's limits)."""
_LONGEST_VISIBILITY = 12 * 3600
_PEEK_SECONDS = 30
"""How long dead letters stay hidden while they are being listed (they are made visible right after)."""
_STALE_RECEIPT = {"ReceiptHandleIsInvalid", "MessageNotInflight", "InvalidParameterValue"}
"""What SQS answers for a receipt that is no longer the message's current one, or a message already gone."""
_RECEIVED_ATTRIBUTES: Sequence[MessageSystemAttributeNameType] = ["ApproximateReceiveCount"]
_DEAD_ATTRIBUTES: Sequence[MessageSystemAttributeNameType] = ["ApproximateReceiveCount", "SentTimestamp"]


def _whole_seconds(seconds: float, longest: int) -> int:
    return min(max(math.floor(seconds + 0.5), 0), longest)


def _short_code(code: str) -> str:
    """``AWS.SimpleQueueService.MessageNotInflight`` → ``MessageNotInflight``."""
    return code.rsplit(".", 1)[-1]


def _receive_count(message: MessageTypeDef) -> int:
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


class SqsEventQueue:
    """The EventQueue port over an SQS queue and its dead-letter queue."""

    def __init__(self, sqs: SQSClient, url: str, dead_letter_url: str) -> None:
        self._sqs = sqs
        self._url = url
        self._dead_letter_url = dead_letter_url
        self._giving_back: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, clients: AwsClients) -> SqsEventQueue:
        """The queue and dead-letter queue named by ``clients.names`` (they must exist)."""
        url = await clients.sqs.get_queue_url(QueueName=clients.names.queue)
        dead_letter_url = await clients.sqs.get_queue_url(QueueName=clients.names.dead_letter_queue)
        return cls(clients.sqs, url["QueueUrl"], dead_letter_url["QueueUrl"])

    async def send(self, body: str) -> None:
        await self._sqs.send_message(QueueUrl=self._url, MessageBody=body)

    async def depth(self) -> QueueDepth:
        names: list[QueueAttributeFilterType] = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
        ]
        main, dead = await asyncio.gather(
            self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=names),
            self._sqs.get_queue_attributes(QueueUrl=self._dead_letter_url, AttributeNames=names[:1]),
        )
        return QueueDepth(
            visible=int(main["Attributes"].get("ApproximateNumberOfMessages", 0)),
            in_flight=int(main["Attributes"].get("ApproximateNumberOfMessagesNotVisible", 0)),
            dead_letters=int(dead["Attributes"].get("ApproximateNumberOfMessages", 0)),
        )

    async def receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[QueueMessage]:
        count = min(max(max_messages, 1), _BATCH)
        visibility = _whole_seconds(visibility_timeout, _LONGEST_VISIBILITY)
        if wait_seconds >= 1:
            return await self._take(count, min(math.ceil(wait_seconds), LONGEST_POLL), visibility)
        messages = await self._take(count, 0, visibility)
        if messages or wait_seconds <= 0:
            return messages
        await asyncio.sleep(wait_seconds)
        return await self._take(count, 0, visibility)

    async def _take(self, count: int, wait: int, visibility: int) -> list[QueueMessage]:
        """One ``ReceiveMessage``; if the caller is cancelled meanwhile, what it took is visible again.

        A request on its way cannot be called back: SQS may already have hidden messages for it. So
        the request runs on (it ends within its long poll), and what it brings is handed back at once.
        """
        request = asyncio.ensure_future(self._receive_message(count, wait, visibility))
        try:
            return await asyncio.shield(request)
        except asyncio.CancelledError:
            giving_back = asyncio.ensure_future(self._give_back(request))
            # Kept referenced: if the caller is cancelled again, this still runs to its end.
            self._giving_back.add(giving_back)
            giving_back.add_done_callback(self._giving_back.discard)
            await asyncio.shield(giving_back)
            raise

    async def _receive_message(self, count: int, wait: int, visibility: int) -> list[QueueMessage]:
        response = await self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait,
            VisibilityTimeout=visibility,
            MessageSystemAttributeNames=_RECEIVED_ATTRIBUTES,
        )
        return [
            QueueMessage(
                id=message["MessageId"],
                receipt=message["ReceiptHandle"],
                body=message["Body"],
                receive_count=_receive_count(message),
            )
            for message in response.get("Messages", [])
        ]

    async def _give_back(self, request: asyncio.Future[list[QueueMessage]]) -> None:
        try:
            messages = await request
        except Exception:
            return  # the request failed: it took nothing
        await self._make_visible(self._url, [message.receipt for message in messages])

    async def _make_visible(self, url: str, receipts: list[str]) -> None:
        """Make received messages visible again at once; a failure is logged (they reappear after
        their visibility timeout anyway)."""
        for start in range(0, len(receipts), _BATCH):
            batch = receipts[start : start + _BATCH]
            try:
                response = await self._sqs.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
                        for i, receipt in enumerate(batch)
                    ],
                )
            except Exception:
                log.exception("received messages could not be made visible again", count=len(batch))
                continue
            for failure in response.get("Failed", []):
                if _short_code(failure["Code"]) not in _STALE_RECEIPT:
                    log.warning("a received message could not be made visible again", code=failure["Code"])

    async def delete(self, *receipts: str) -> None:
        await asyncio.gather(
            *(self._delete_batch(list(receipts[start : start + _BATCH])) for start in range(0, len(receipts), _BATCH))
        )

    async def _delete_batch(self, receipts: list[str]) -> None:
        response = await self._sqs.delete_message_batch(
            QueueUrl=self._url,
            Entries=[{"Id": str(i), "ReceiptHandle": receipt} for i, receipt in enumerate(receipts)],
        )
        for failure in response.get("Failed", []):
            # A stale receipt: the message was received again since (or is gone); it is not ours to delete.
            if _short_code(failure["Code"]) not in _STALE_RECEIPT:
                log.warning(
                    "a handled message could not be deleted", code=failure["Code"], reason=failure.get("Message")
                )

    async def extend_visibility(self, receipt: str, seconds: float) -> None:
        try:
            await self._sqs.change_message_visibility(
                QueueUrl=self._url,
                ReceiptHandle=receipt,
                VisibilityTimeout=_whole_seconds(seconds, _LONGEST_VISIBILITY),
            )
        except ClientError as exc:
            if _short_code(error_code(exc)) not in _STALE_RECEIPT:
                raise

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Dead letters without consuming them: each batch read stays hidden while the next is read
        (otherwise SQS hands the same few out again and again), then all are made visible again."""
        letters: dict[str, DeadLetter] = {}
        receipts: list[str] = []
        try:
            while len(letters) < limit:
                response = await self._sqs.receive_message(
                    QueueUrl=self._dead_letter_url,
                    MaxNumberOfMessages=min(limit - len(letters), _BATCH),
                    WaitTimeSeconds=0,
                    VisibilityTimeout=_PEEK_SECONDS,
                    MessageSystemAttributeNames=_DEAD_ATTRIBUTES,
                )
                batch = response.get("Messages", [])
                receipts += [message["ReceiptHandle"] for message in batch]
                new = [message for message in batch if message["MessageId"] not in letters]
                if not new:
                    break
                for message in new:
                    letters[message["MessageId"]] = DeadLetter(
                        id=message["MessageId"],
                        body=message["Body"],
                        # This very look counted as a receive too.
                        receive_count=max(_receive_count(message) - 1, 0),
                        dead_at=int(message.get("Attributes", {}).get("SentTimestamp", "0")) / 1000,
                    )
        finally:
            await self._make_visible(self._dead_letter_url, receipts)
        return sorted(letters.values(), key=lambda letter: (letter.dead_at, letter.id))

    async def redrive(self, ids: Sequence[str] | None) -> int:
        """Receive from the dead-letter queue, send to the queue, and only then delete from the dead-letter
        queue: a failure on the way leaves a message on both (handled twice), never on neither. Dead letters
        not asked for stay hidden until every batch was read, then are made visible again."""
        wanted = None if ids is None else set(ids)
        redriven = 0
        seen: set[str] = set()
        skipped: list[str] = []
        try:
            while wanted is None or redriven < len(wanted):
                response = await self._sqs.receive_message(
                    QueueUrl=self._dead_letter_url,
                    MaxNumberOfMessages=_BATCH,
                    WaitTimeSeconds=0,
                    VisibilityTimeout=_PEEK_SECONDS,
                )
                batch = response.get("Messages", [])
                new = [message for message in batch if message["MessageId"] not in seen]
                if not new:  # none left, or only those passed over, visible again after a long read
                    skipped += [message["ReceiptHandle"] for message in batch]
                    break
                seen.update(message["MessageId"] for message in new)
                chosen = [message for message in new if wanted is None or message["MessageId"] in wanted]
                skipped += [message["ReceiptHandle"] for message in batch if message not in chosen]
                redriven += await self._move_back(chosen)
        finally:
            await self._make_visible(self._dead_letter_url, skipped)
        return redriven

    async def _move_back(self, messages: list[MessageTypeDef]) -> int:
        """Send ``messages`` (one receive's worth) to the queue, then delete from the dead-letter queue those
        that were sent; how many were."""
        if not messages:
            return 0
        sent = await self._sqs.send_message_batch(
            QueueUrl=self._url,
            Entries=[{"Id": str(i), "MessageBody": message["Body"]} for i, message in enumerate(messages)],
        )
        for failure in sent.get("Failed", []):
            log.warning("a dead letter could not be sent back to the queue", code=failure["Code"])
        moved = [messages[int(entry["Id"])] for entry in sent.get("Successful", [])]
        if moved:
            deleted = await self._sqs.delete_message_batch(
                QueueUrl=self._dead_letter_url,
                Entries=[{"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]} for i, message in enumerate(moved)],
            )
            for failure in deleted.get("Failed", []):
                log.warning("a redriven dead letter could not be deleted (it is on both queues)", code=failure["Code"])
        return len(moved)
