"""``lfusys migrate`` on the aws backend: create what is missing, bring the rest up to date.

Every step may be run again, and by several replicas at once: a resource someone else has just
created counts as created. What it sets up:

- the bucket, with CORS for the web origin and lifecycle rules (incomplete multipart uploads are
  aborted and ``uploads/`` objects deleted after ``LFUSYS_AWS_UPLOADS_EXPIRE_DAYS``);
- the event queue and its dead-letter queue (a message received ``LFUSYS_QUEUE_MAX_RECEIVES``
  times moves there; it keeps messages 14 days, longer than the queue's 4), a queue policy that lets
  the bucket send, and the bucket notification ``s3:ObjectCreated:*`` on ``uploads/`` → queue;
- the DynamoDB tables of :mod:`lfusys.storage.aws.resources`, with their indexes and TTL (an index
  missing from an existing table is added).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from botocore.exceptions import ClientError

from lfusys.settings import Settings
from lfusys.storage.aws.clients import AwsClients, error_code
from lfusys.storage.aws.resources import TABLES, table_definition

if TYPE_CHECKING:
    from types_aiobotocore_s3.literals import EventType
    from types_aiobotocore_s3.type_defs import QueueConfigurationOutputTypeDef

log = structlog.get_logger(__name__)

_QUEUE_RETENTION = 4 * 24 * 3600
# A message keeps its first enqueue time when it moves to the dead-letter queue, so that queue must
# keep messages longer than the event queue does.
_DEAD_LETTER_RETENTION = 14 * 24 * 3600
_TABLE_PATIENCE = 120
"""Seconds to wait for a new table to become active."""
_INDEX_PATIENCE = 3600
"""Seconds to wait for an index added to an existing table (DynamoDB backfills it first)."""
_INDEX_POLL = 5
_BUCKET_PATIENCE = 60
"""Seconds to wait for a new bucket to answer (or for another replica's creation of it to finish)."""

_NOTIFICATION_ID = "chunks-stored"
_NOTIFIED_PREFIX = "uploads/"
_NOTIFIED_EVENTS: list[EventType] = ["s3:ObjectCreated:*"]
_OTHER_TARGETS = ("TopicConfigurations", "LambdaFunctionConfigurations", "EventBridgeConfiguration")


class ResourceConflict(RuntimeError):
    """A resource exists but cannot be used as configured; the message says which, and what to change."""


async def create_resources(clients: AwsClients, settings: Settings) -> list[str]:
    """Create or update every resource; return a line per resource, saying what it is."""
    done = [await _bucket(clients, settings)]
    done += await _queues(clients, settings)
    done += await asyncio.gather(*(_table(clients, kind) for kind in TABLES))
    return done


# --- the bucket ----------------------------------------------------------------------------------


async def _bucket(clients: AwsClients, settings: Settings) -> str:
    s3, bucket = clients.s3, clients.names.bucket
    await _create_bucket(clients)
    origin = web_origin(settings.core.public_url)
    await s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [origin],
                    "AllowedMethods": ["GET", "HEAD"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["Content-Length", "Content-Disposition", "ETag"],
                    "MaxAgeSeconds": 3600,
                }
            ]
        },
    )
    days = settings.aws.aws_uploads_expire_days
    await s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "abort-incomplete-assemblies",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
                },
                {
                    "ID": "expire-chunks",
                    "Status": "Enabled",
                    "Filter": {"Prefix": _NOTIFIED_PREFIX},
                    "Expiration": {"Days": days},
                },
            ]
        },
    )
    return f"bucket {bucket} (CORS for {origin}, lifecycle {days} days)"


async def _create_bucket(clients: AwsClients) -> None:
    s3, bucket = clients.s3, clients.names.bucket
    region = s3.meta.region_name
    try:
        if region and region != "us-east-1":
            await s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
        else:
            await s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code == "BucketAlreadyExists":  # bucket names are global: another account has this one
            raise ResourceConflict(
                f"the bucket name {bucket} is taken by another AWS account: choose another LFUSYS_AWS_PREFIX"
            ) from exc
        # OperationAborted: another replica is creating it right now.
        if code not in {"BucketAlreadyOwnedByYou", "OperationAborted"}:
            raise
    waiter = s3.get_waiter("bucket_exists")
    await waiter.wait(Bucket=bucket, WaiterConfig={"Delay": 1, "MaxAttempts": _BUCKET_PATIENCE})


def web_origin(public_url: str) -> str:
    """The origin browsers send for pages of ``public_url`` (scheme and host, no path)."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}"


# --- the queues and the bucket's events ----------------------------------------------------------


async def _queues(clients: AwsClients, settings: Settings) -> list[str]:
    sqs, names = clients.sqs, clients.names
    dead_url = (await sqs.create_queue(QueueName=names.dead_letter_queue))["QueueUrl"]
    await sqs.set_queue_attributes(
        QueueUrl=dead_url, Attributes={"MessageRetentionPeriod": str(_DEAD_LETTER_RETENTION)}
    )
    dead_arn = await queue_arn(clients, dead_url)
    url = (await sqs.create_queue(QueueName=names.queue))["QueueUrl"]
    arn = await queue_arn(clients, url)
    await sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "VisibilityTimeout": str(int(settings.queue.queue_visibility_timeout.total_seconds())),
            "MessageRetentionPeriod": str(_QUEUE_RETENTION),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_arn, "maxReceiveCount": settings.queue.queue_max_receives}
            ),
            "Policy": json.dumps(_queue_policy(arn, names.bucket)),
        },
    )
    await _notify_queue(clients, arn)
    receives = settings.queue.queue_max_receives
    return [
        f"queue {names.queue} (dead letters to {names.dead_letter_queue} after {receives} receives)",
        f"bucket notification: s3:ObjectCreated:* on {_NOTIFIED_PREFIX} -> {names.queue}",
    ]


async def queue_arn(clients: AwsClients, url: str) -> str:
    attributes = await clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def _queue_policy(queue: str, bucket: str) -> dict[str, Any]:
    """Lets S3 send this bucket's events to the queue, and nothing else: the bucket is named by ARN and
    by owner, since a deleted bucket's name may be taken by another account."""
    _, partition, _, _, account, _ = queue.split(":", 5)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "bucket-events",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::{bucket}"},
                    "StringEquals": {"aws:SourceAccount": account},
                },
            }
        ],
    }


async def _notify_queue(clients: AwsClients, arn: str) -> None:
    """Point the bucket's notifications at the queue and nowhere else (the bucket is LFUSYS's alone),
    unless they already are: S3 sends a test message to the queue each time they are set."""
    s3, bucket = clients.s3, clients.names.bucket
    current = await s3.get_bucket_notification_configuration(Bucket=bucket)
    configured = [_queue_target(target) for target in current.get("QueueConfigurations", [])]
    others = any(kind in current for kind in _OTHER_TARGETS)
    if configured == [(arn, tuple(_NOTIFIED_EVENTS), _NOTIFIED_PREFIX)] and not others:
        return
    await s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": _NOTIFICATION_ID,
                    "QueueArn": arn,
                    "Events": _NOTIFIED_EVENTS,
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": _NOTIFIED_PREFIX}]}},
                }
            ]
        },
    )


def _queue_target(target: QueueConfigurationOutputTypeDef) -> tuple[str, tuple[str, ...], str | None]:
    """A queue notification as (queue ARN, events, key prefix); S3 answers ``Prefix`` for ``prefix``."""
    rules = target.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    prefixes = [rule["Value"] for rule in rules if rule["Name"].lower() == "prefix"]
    prefix = prefixes[0] if len(rules) == 1 and prefixes else None
    return target["QueueArn"], tuple(sorted(target["Events"])), prefix


# --- the tables ----------------------------------------------------------------------------------


async def _table(clients: AwsClients, kind: str) -> str:
    dynamodb, name = clients.dynamodb, clients.names.table(kind)
    definition = table_definition(clients.names, kind)
    try:
        await dynamodb.create_table(**definition)
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":  # it exists, or another replica is creating it
            raise
    waiter = dynamodb.get_waiter("table_exists")
    await waiter.wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": _TABLE_PATIENCE})
    added = await _add_missing_indexes(clients, kind)
    ttl = TABLES[kind].get("ttl")
    if ttl:
        await _expire_by(clients, name, ttl)
    notes = [f"added index {index}" for index in added] + ([f"expires items by {ttl}"] if ttl else [])
    return f"table {name}" + (f" ({', '.join(notes)})" if notes else "")


async def _add_missing_indexes(clients: AwsClients, kind: str) -> list[str]:
    """Add the indexes of :data:`TABLES` that an existing table lacks, one at a time (DynamoDB builds
    one at a time); refuse a table or an index whose keys differ, which only a new table can fix."""
    dynamodb, name = clients.dynamodb, clients.names.table(kind)
    definition = table_definition(clients.names, kind)
    table = (await dynamodb.describe_table(TableName=name))["Table"]
    if table.get("KeySchema") != definition["KeySchema"]:
        raise ResourceConflict(f"table {name} exists with other keys: {table.get('KeySchema')}")
    existing = {index["IndexName"]: index.get("KeySchema") for index in table.get("GlobalSecondaryIndexes", [])}
    added = []
    for index in definition.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] not in existing:
            await dynamodb.update_table(
                TableName=name,
                AttributeDefinitions=definition["AttributeDefinitions"],
                GlobalSecondaryIndexUpdates=[{"Create": index}],
            )
            await _index_active(clients, name, index["IndexName"])
            added.append(index["IndexName"])
        elif existing[index["IndexName"]] != index["KeySchema"]:
            raise ResourceConflict(f"index {index['IndexName']} of table {name} exists with other keys")
    return added


async def _index_active(clients: AwsClients, table: str, index: str) -> None:
    log.info("adding an index, waiting until it is built", table=table, index=index)
    for _ in range(_INDEX_PATIENCE // _INDEX_POLL):
        described = (await clients.dynamodb.describe_table(TableName=table))["Table"]
        statuses = {i["IndexName"]: i.get("IndexStatus") for i in described.get("GlobalSecondaryIndexes", [])}
        if statuses.get(index) == "ACTIVE":
            return
        await asyncio.sleep(_INDEX_POLL)
    raise TimeoutError(f"index {index} of table {table} did not become active in {_INDEX_PATIENCE}s")


async def _expire_by(clients: AwsClients, table: str, attribute: str) -> None:
    """Turn on TTL on ``attribute`` unless it is on (or being turned on)."""
    dynamodb = clients.dynamodb
    for attempt in range(2):
        described = (await dynamodb.describe_time_to_live(TableName=table))["TimeToLiveDescription"]
        if described.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
            if described.get("AttributeName") != attribute:
                raise ResourceConflict(f"table {table} expires items by {described.get('AttributeName')}")
            return
        try:
            await dynamodb.update_time_to_live(
                TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
            )
            return
        except ClientError as exc:
            # Another replica turned it on in between: DynamoDB refuses a second change. Look again.
            if error_code(exc) != "ValidationException" or attempt:
                raise
