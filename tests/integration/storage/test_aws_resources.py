"""``create_resources`` (what ``lfusys migrate`` runs on the aws backend), against the emulator.

Each test has resources of its own (their prefix comes from its data directory) and checks them with
plain AWS clients, where an operator would look: the bucket's CORS, lifecycle and notification, the
queues' attributes, the tables' keys, indexes and TTL, and the events a stored object produces.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import aioboto3
import pytest
from aiobotocore.config import AioConfig
from types_aiobotocore_dynamodb import DynamoDBClient
from types_aiobotocore_s3 import S3Client
from types_aiobotocore_sqs import SQSClient

from lfusys.settings import Settings, SettingsError, load_settings
from lfusys.storage.aws.clients import open_clients
from lfusys.storage.aws.migrate import ResourceConflict, create_resources
from lfusys.storage.aws.resources import TABLES, Names
from tests.aws_emulator import emulator_endpoint
from tests.support import make_settings


@dataclass(frozen=True)
class Console:
    """Plain AWS clients, as an operator would use them to look at what was created."""

    s3: S3Client
    sqs: SQSClient
    dynamodb: DynamoDBClient


@pytest.fixture
async def console() -> AsyncIterator[Console]:
    session, endpoint = aioboto3.Session(), emulator_endpoint()
    path_style = AioConfig(s3={"addressing_style": "path"})
    async with (
        session.client("s3", endpoint_url=endpoint, config=path_style) as s3,
        session.client("sqs", endpoint_url=endpoint) as sqs,
        session.client("dynamodb", endpoint_url=endpoint) as dynamodb,
    ):
        yield Console(s3, sqs, dynamodb)


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings(tmp_path / "data", backend="aws", **overrides)


async def migrate(settings: Settings) -> list[str]:
    async with open_clients(settings.aws) as clients:
        return await create_resources(clients, settings)


@pytest.fixture
async def migrated(tmp_path: Path) -> Settings:
    """Settings whose resources have just been created."""
    settings = settings_for(tmp_path, public_url="https://files.example.org/", queue_max_receives=3)
    await migrate(settings)
    return settings


def names_of(settings: Settings) -> Names:
    return Names(settings.aws.aws_prefix)


async def queue_attributes(console: Console, name: str) -> dict[str, str]:
    url = (await console.sqs.get_queue_url(QueueName=name))["QueueUrl"]
    attributes = (await console.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))["Attributes"]
    return {str(attribute): value for attribute, value in attributes.items()}


# --- what is created -----------------------------------------------------------------------------


async def test_the_bucket_lets_the_web_origin_read_files(console: Console, migrated: Settings) -> None:
    rules = (await console.s3.get_bucket_cors(Bucket=names_of(migrated).bucket))["CORSRules"]

    assert len(rules) == 1
    assert rules[0]["AllowedOrigins"] == ["https://files.example.org"]
    assert sorted(rules[0]["AllowedMethods"]) == ["GET", "HEAD"]


async def test_the_bucket_expires_chunks_and_abandoned_assemblies(console: Console, migrated: Settings) -> None:
    days = migrated.aws.aws_uploads_expire_days
    rules = (await console.s3.get_bucket_lifecycle_configuration(Bucket=names_of(migrated).bucket))["Rules"]

    assert all(rule["Status"] == "Enabled" for rule in rules)
    aborting = [rule for rule in rules if "AbortIncompleteMultipartUpload" in rule]
    assert [rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for rule in aborting] == [days]
    assert aborting[0]["Filter"].get("Prefix", "") == ""
    expiring = [rule for rule in rules if "Expiration" in rule]
    assert [(rule["Filter"]["Prefix"], rule["Expiration"]["Days"]) for rule in expiring] == [("uploads/", days)]


async def test_events_that_keep_failing_move_to_the_dead_letter_queue(console: Console, migrated: Settings) -> None:
    names = names_of(migrated)
    queue = await queue_attributes(console, names.queue)
    dead = await queue_attributes(console, names.dead_letter_queue)

    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dead["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == migrated.queue.queue_max_receives == 3
    assert int(queue["VisibilityTimeout"]) == migrated.queue.queue_visibility_timeout.total_seconds()
    # A message keeps its first enqueue time in the dead-letter queue: it must outlive the queue's.
    assert int(dead["MessageRetentionPeriod"]) > int(queue["MessageRetentionPeriod"])


async def test_only_the_bucket_may_send_to_the_queue(console: Console, migrated: Settings) -> None:
    names = names_of(migrated)
    queue = await queue_attributes(console, names.queue)

    [statement] = json.loads(queue["Policy"])["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == queue["QueueArn"]
    assert statement["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:s3:::{names.bucket}"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": queue["QueueArn"].split(":")[4]}


async def test_the_bucket_announces_stored_chunks_on_the_queue(console: Console, migrated: Settings) -> None:
    names = names_of(migrated)
    queue = await queue_attributes(console, names.queue)

    configuration = await console.s3.get_bucket_notification_configuration(Bucket=names.bucket)

    [target] = configuration["QueueConfigurations"]
    assert target["QueueArn"] == queue["QueueArn"]
    assert target["Events"] == ["s3:ObjectCreated:*"]
    [rule] = target["Filter"]["Key"]["FilterRules"]
    assert (rule["Name"].lower(), rule["Value"]) == ("prefix", "uploads/")


async def test_every_table_has_its_keys_and_indexes(console: Console, migrated: Settings) -> None:
    names = names_of(migrated)
    for kind, spec in TABLES.items():
        table = (await console.dynamodb.describe_table(TableName=names.table(kind)))["Table"]

        assert table["TableStatus"] == "ACTIVE"
        assert table["KeySchema"] == spec["KeySchema"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        indexes = {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}
        expected = {index["IndexName"]: index for index in spec.get("GlobalSecondaryIndexes", [])}
        assert sorted(indexes) == sorted(expected), kind
        for name, index in indexes.items():
            assert index["KeySchema"] == expected[name]["KeySchema"], (kind, name)
            assert index["Projection"] == {"ProjectionType": "ALL"}


async def test_refresh_tokens_expire_by_their_ttl_attribute(console: Console, migrated: Settings) -> None:
    table = names_of(migrated).table("refresh-tokens")

    ttl = (await console.dynamodb.describe_time_to_live(TableName=table))["TimeToLiveDescription"]

    assert ttl.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}
    assert ttl.get("AttributeName") == "ttl"


# --- again, and at once --------------------------------------------------------------------------


async def observed(console: Console, settings: Settings) -> dict[str, Any]:
    """Everything about the resources an operator could see change (the queue's message count
    included: setting the notification again would send another test message)."""
    names, bucket = names_of(settings), names_of(settings).bucket
    queues = [await queue_attributes(console, name) for name in (names.queue, names.dead_letter_queue)]
    tables = [(await console.dynamodb.describe_table(TableName=names.table(kind)))["Table"] for kind in TABLES]
    return {
        "cors": (await console.s3.get_bucket_cors(Bucket=bucket))["CORSRules"],
        "lifecycle": (await console.s3.get_bucket_lifecycle_configuration(Bucket=bucket))["Rules"],
        "notification": (await console.s3.get_bucket_notification_configuration(Bucket=bucket))["QueueConfigurations"],
        "queues": [{key: value for key, value in queue.items() if not key.endswith("Timestamp")} for queue in queues],
        "tables": [
            (
                table["TableId"],
                table["KeySchema"],
                [index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])],
            )
            for table in tables
        ],
    }


async def test_a_second_run_succeeds_and_changes_nothing(console: Console, migrated: Settings) -> None:
    before = await observed(console, migrated)

    await migrate(migrated)

    assert await observed(console, migrated) == before


async def test_two_replicas_migrating_at_once_both_succeed(console: Console, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)

    first, second = await asyncio.gather(migrate(settings), migrate(settings))

    assert first == second
    assert len(first) == 3 + len(TABLES)
    described = [await console.dynamodb.describe_table(TableName=names_of(settings).table(kind)) for kind in TABLES]
    assert {table["Table"].get("TableStatus") for table in described} == {"ACTIVE"}


async def test_an_index_missing_from_an_existing_table_is_added(console: Console, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    table = names_of(settings).table("uploads")
    await console.dynamodb.create_table(
        TableName=table,
        KeySchema=TABLES["uploads"]["KeySchema"],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("id", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )

    await migrate(settings)

    described = (await console.dynamodb.describe_table(TableName=table))["Table"]
    indexes = {index["IndexName"]: index["KeySchema"] for index in described.get("GlobalSecondaryIndexes", [])}
    assert indexes == {index["IndexName"]: index["KeySchema"] for index in TABLES["uploads"]["GlobalSecondaryIndexes"]}


async def test_a_table_with_other_keys_is_refused(console: Console, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    table = names_of(settings).table("users")
    await console.dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "email", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    with pytest.raises(ResourceConflict, match=table):
        await migrate(settings)


# --- the events a stored object produces ---------------------------------------------------------


async def stored_keys_announced(console: Console, settings: Settings, last: str) -> list[str]:
    """The keys of the storage events on the queue, read until the event for ``last`` arrives (test
    messages skipped, keys decoded as S3 encodes them)."""
    url = (await console.sqs.get_queue_url(QueueName=names_of(settings).queue))["QueueUrl"]
    keys: list[str] = []
    async with asyncio.timeout(10):
        while last not in keys:
            response = await console.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in response.get("Messages", []):
                body = json.loads(message["Body"])
                keys += [unquote_plus(record["s3"]["object"]["key"]) for record in body.get("Records", [])]
    return keys


async def test_a_chunk_stored_under_uploads_is_announced_with_its_key(console: Console, migrated: Settings) -> None:
    key = "uploads/0b5e3a/chunk 00001+a.bin"

    await console.s3.put_object(Bucket=names_of(migrated).bucket, Key=key, Body=b"chunk")

    assert await stored_keys_announced(console, migrated, key) == [key]


async def test_an_object_outside_uploads_is_not_announced(console: Console, migrated: Settings) -> None:
    bucket = names_of(migrated).bucket
    await console.s3.put_object(Bucket=bucket, Key="files/0b5e3a", Body=b"file")
    await console.s3.put_object(Bucket=bucket, Key="uploads/0b5e3a/chunk-00001", Body=b"chunk")

    assert await stored_keys_announced(console, migrated, "uploads/0b5e3a/chunk-00001") == [
        "uploads/0b5e3a/chunk-00001"
    ]


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["", "ab", "LFUSYS", "lfu_sys", "lfu.sys", "-lfusys", "lfusys-", "lfu sys", "x" * 41]
)
def test_a_prefix_that_is_not_a_valid_resource_name_is_refused(prefix: str) -> None:
    with pytest.raises(SettingsError, match="LFUSYS_AWS_PREFIX"):
        load_settings({"LFUSYS_BACKEND": "aws", "LFUSYS_AWS_PREFIX": prefix})
