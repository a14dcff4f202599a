"""deploy/aws/lfusys.yaml, checked offline: cfn-lint finds nothing, checkov fails nothing but what the
template skips with a reason, and the template agrees with the app — the names its aws settings give,
the resources `lfusys migrate` would make, the README's IAM policies, the health check the app
answers, and the queue the app consumes."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from lfusys.app import create_app
from lfusys.settings import AwsSettings, QueueSettings
from lfusys.storage.aws import migrate
from lfusys.storage.aws.resources import TABLES, Names, table_definition
from tests.support import make_settings

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "deploy" / "aws" / "lfusys.yaml"
README = ROOT / "README.md"
CHECKERS = ROOT / ".venv-iac" / "bin"
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
"""Any request a checker tries to make goes to a closed port on this machine, never out."""

DOMAIN = "files.example.com"
PLACEHOLDERS = {"AWS::Partition": "aws", "AWS::Region": "*", "AWS::AccountId": "*", "DomainName": DOMAIN}
"""What ``${...}`` in the template stands for here: the README writes region and account as ``*``."""


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(TEMPLATE.read_text())
    return loaded


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template["Resources"]
    return found


@pytest.fixture(scope="module")
def prefix(template: dict[str, Any]) -> str:
    default: str = template["Parameters"]["Prefix"]["Default"]
    return default


def resolved(value: Any, prefix: str) -> Any:
    """``value`` with ``Fn::Sub`` and ``Ref`` of the parameters above (and Prefix) worked out; any
    other intrinsic is left as it is."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        known = PLACEHOLDERS | {"Prefix": prefix}
        return re.sub(r"\$\{([^}]+)\}", lambda m: known.get(m.group(1), m.group(0)), value["Fn::Sub"])
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in PLACEHOLDERS | {"Prefix": prefix}:
        return (PLACEHOLDERS | {"Prefix": prefix})[value["Ref"]]
    if isinstance(value, dict):
        return {key: resolved(item, prefix) for key, item in value.items()}
    if isinstance(value, list):
        return [resolved(item, prefix) for item in value]
    return value


def of_type(resources: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in resources.items() if resource["Type"] == kind}


def run_checker(*argv: str) -> subprocess.CompletedProcess[str]:
    tool = CHECKERS / argv[0]
    assert tool.exists(), "scripts/bootstrap --test installs cfn-lint and checkov into .venv-iac/"
    return subprocess.run(
        [str(tool), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **OFFLINE},
    )


# --- the linters -----------------------------------------------------------------------------------


def test_cfn_lint_finds_nothing() -> None:
    linted = run_checker("cfn-lint", str(TEMPLATE))

    assert (linted.returncode, linted.stdout, linted.stderr) == (0, "", "")


def declared_skips(resources: dict[str, dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(check, resource) → the reason the template gives for skipping it."""
    return {
        (skip["id"], name): skip.get("comment", "")
        for name, resource in resources.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def test_checkov_fails_nothing_but_what_the_template_skips_with_a_reason(resources: dict[str, dict[str, Any]]) -> None:
    scanned = run_checker(
        "checkov", "-f", str(TEMPLATE), "--framework", "cloudformation", "--skip-download", "-o", "json"
    )

    report = json.loads(scanned.stdout)["results"]
    assert [(check["check_id"], check["resource"]) for check in report["failed_checks"]] == []
    assert len(report["passed_checks"]) > 50, "checkov read the template"
    skipped = {(check["check_id"], check["resource"].split(".", 1)[1]) for check in report["skipped_checks"]}
    declared = declared_skips(resources)
    assert skipped == set(declared), "every skip in the template is of a check that would fail"
    assert {key: reason for key, reason in declared.items() if len(reason.split()) < 8} == {}, "each with a reason"


# --- the data plane, as the app names it and `lfusys migrate` makes it -------------------------------


def test_every_resource_the_aws_settings_name_is_there_under_that_name(
    resources: dict[str, dict[str, Any]], prefix: str
) -> None:
    names = Names(prefix)
    buckets = [resolved(r["Properties"]["BucketName"], prefix) for r in of_type(resources, "AWS::S3::Bucket").values()]
    queues = [resolved(r["Properties"]["QueueName"], prefix) for r in of_type(resources, "AWS::SQS::Queue").values()]
    tables = [
        resolved(r["Properties"]["TableName"], prefix) for r in of_type(resources, "AWS::DynamoDB::Table").values()
    ]

    assert buckets == [names.bucket]
    assert sorted(queues) == sorted([names.queue, names.dead_letter_queue])
    assert sorted(tables) == sorted(names.table(kind) for kind in TABLES)


def tables_by_name(resources: dict[str, dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    return {
        resolved(r["Properties"]["TableName"], prefix): r for r in of_type(resources, "AWS::DynamoDB::Table").values()
    }


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_each_table_has_the_keys_indexes_and_ttl_migrate_gives_it(
    resources: dict[str, dict[str, Any]], prefix: str, kind: str
) -> None:
    names = Names(prefix)
    expected = table_definition(names, kind)
    table = tables_by_name(resources, prefix)[names.table(kind)]
    properties = table["Properties"]

    assert properties["KeySchema"] == expected["KeySchema"]
    assert sorted(properties["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert properties.get("GlobalSecondaryIndexes", []) == expected.get("GlobalSecondaryIndexes", [])
    assert properties["BillingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"
    ttl = TABLES[kind].get("ttl")
    assert properties.get("TimeToLiveSpecification") == ({"AttributeName": ttl, "Enabled": True} if ttl else None)
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_queues_are_set_as_migrate_sets_them(resources: dict[str, dict[str, Any]], prefix: str) -> None:
    defaults = QueueSettings()
    events, dead = resources["EventsQueue"]["Properties"], resources["DeadLetterQueue"]["Properties"]

    assert events["VisibilityTimeout"] == defaults.queue_visibility_timeout / timedelta(seconds=1)
    assert events["MessageRetentionPeriod"] == migrate._QUEUE_RETENTION
    assert events["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": defaults.queue_max_receives,
    }
    assert dead["MessageRetentionPeriod"] == migrate._DEAD_LETTER_RETENTION


def test_only_the_bucket_may_send_to_the_queue_as_migrate_allows(
    resources: dict[str, dict[str, Any]], prefix: str
) -> None:
    policy = resources["EventsQueuePolicy"]["Properties"]
    # Region and account as the template's placeholders resolve here ("*"); the queue's ARN is its GetAtt.
    expected = migrate._queue_policy("arn:aws:sqs:*:*:" + Names(prefix).queue, Names(prefix).bucket)["Statement"]
    for statement in expected:
        statement["Resource"] = {"Fn::GetAtt": ["EventsQueue", "Arn"]}

    template_statements = resolved(policy["PolicyDocument"]["Statement"], prefix)
    assert policy["Queues"] == [{"Ref": "EventsQueue"}]
    assert template_statements == expected


def test_the_bucket_is_private_encrypted_and_set_as_migrate_sets_it(
    resources: dict[str, dict[str, Any]], prefix: str
) -> None:
    bucket = resources["Bucket"]
    properties = resolved(bucket["Properties"], prefix)
    days = AwsSettings().aws_uploads_expire_days

    assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    [cors] = properties["CorsConfiguration"]["CorsRules"]
    assert cors == {
        "AllowedOrigins": [migrate.web_origin(f"https://{DOMAIN}")],
        "AllowedMethods": ["GET", "HEAD"],
        "AllowedHeaders": ["*"],
        "ExposedHeaders": ["Content-Length", "Content-Disposition", "ETag"],
        "MaxAge": 3600,
    }
    rules = {rule["Id"]: rule for rule in properties["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-assemblies"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": days}
    assert (rules["expire-chunks"]["Prefix"], rules["expire-chunks"]["ExpirationInDays"]) == (
        migrate._NOTIFIED_PREFIX,
        days,
    )
    [notification] = properties["NotificationConfiguration"]["QueueConfigurations"]
    assert [notification["Event"]] == migrate._NOTIFIED_EVENTS
    assert notification["Queue"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": migrate._NOTIFIED_PREFIX}]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")


# --- the service --------------------------------------------------------------------------------------


def readme_policy(after: str) -> list[dict[str, Any]]:
    """The statements of the first JSON policy in the README after the words ``after``."""
    text = README.read_text()
    block = text[text.index(after) :].split("```json\n", 1)[1].split("```", 1)[0]
    statements: list[dict[str, Any]] = json.loads(block)["Statement"]
    return statements


def as_readme_writes_it(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The template's statements for the README's example prefix ``lfusys``, region and account ``*``."""
    return [
        {**statement, "Resource": resolved(statement["Resource"], prefix).replace(prefix, "lfusys", 1)}
        if isinstance(resolved(statement["Resource"], prefix), str)
        else {
            **statement,
            "Resource": [item.replace(prefix, "lfusys", 1) for item in resolved(statement["Resource"], prefix)],
        }
        for statement in statements
    ]


def test_the_task_role_may_do_exactly_what_the_readme_lists(resources: dict[str, dict[str, Any]], prefix: str) -> None:
    role = resources["TaskRole"]["Properties"]
    runtime = resources["RuntimePolicy"]["Properties"]["PolicyDocument"]["Statement"]

    assert role["ManagedPolicyArns"] == [{"Ref": "RuntimePolicy"}]
    assert "Policies" not in role, "nothing beyond the README's runtime policy"
    assert as_readme_writes_it(runtime, prefix) == readme_policy("The servers and workers need")


def test_the_migrate_task_may_also_do_what_the_readme_lists_for_migrate(
    resources: dict[str, dict[str, Any]], prefix: str
) -> None:
    role = resources["MigrateRole"]["Properties"]
    [extra] = role["Policies"]

    assert role["ManagedPolicyArns"] == [{"Ref": "RuntimePolicy"}]
    assert as_readme_writes_it(extra["PolicyDocument"]["Statement"], prefix) == readme_policy(
        "`lfusys migrate` (and a server started with"
    )
    migrating = container(resources, "MigrateTaskDefinition")
    assert migrating["Command"] == ["migrate"]
    assert migrating["Image"] == {"Fn::If": ["HasMigrateImage", {"Ref": "MigrateImageUri"}, {"Ref": "ImageUri"}]}
    assert {item["Name"]: item["Value"] for item in migrating["Environment"]}["LFUSYS_AWS_PREFIX"] == {"Ref": "Prefix"}


def test_only_the_bucket_and_the_tables_outlive_the_stack(resources: dict[str, dict[str, Any]]) -> None:
    retained = {name for name, resource in resources.items() if resource.get("DeletionPolicy") == "Retain"}

    assert retained == {"Bucket"} | set(of_type(resources, "AWS::DynamoDB::Table"))


def container(resources: dict[str, dict[str, Any]], task: str = "TaskDefinition") -> dict[str, Any]:
    [definition] = resources[task]["Properties"]["ContainerDefinitions"]
    found: dict[str, Any] = definition
    return found


def test_the_load_balancer_checks_the_path_the_container_checks_and_the_app_answers(
    resources: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    target_group = resources["TargetGroup"]["Properties"]
    checked = container(resources)["HealthCheck"]["Command"]
    [url] = re.findall(r"http://127\.0\.0\.1:(\d+)(/[\w/]+)", " ".join(checked))
    routes = {route.path for route in create_app(make_settings(tmp_path, backend="memory")).routes}

    assert url == (str(target_group["Port"]), target_group["HealthCheckPath"])
    assert target_group["HealthCheckPath"] == "/health/ready"
    assert target_group["HealthCheckPath"] in routes
    assert container(resources)["PortMappings"] == [{"ContainerPort": target_group["Port"], "Protocol": "tcp"}]
    attributes = {item["Key"]: item["Value"] for item in target_group["TargetGroupAttributes"]}
    assert attributes["stickiness.enabled"] == "false"


def test_the_replicas_run_the_aws_backend_with_this_prefix_and_trust_only_the_vpc(
    resources: dict[str, dict[str, Any]],
) -> None:
    environment = {item["Name"]: item["Value"] for item in container(resources)["Environment"] if "Name" in item}
    secrets = {item["Name"] for item in container(resources)["Secrets"] if "Name" in item}

    assert environment["LFUSYS_BACKEND"] == "aws"
    assert environment["LFUSYS_AWS_PREFIX"] == {"Ref": "Prefix"}
    assert environment["LFUSYS_PUBLIC_URL"] == {"Fn::Sub": "https://${DomainName}"}
    assert environment["LFUSYS_TRUSTED_PROXIES"] == {"Ref": "VpcCidr"}
    assert "LFUSYS_REDIS_URL" in environment
    assert {"LFUSYS_JWT_ACCESS_SECRET", "LFUSYS_JWT_REFRESH_SECRET"} <= secrets
    assert not {name for name in environment if "SECRET" in name}, "secrets come from Secrets Manager"


def test_scaling_follows_the_queue_the_app_consumes_per_task_and_cpu(
    resources: dict[str, dict[str, Any]], prefix: str
) -> None:
    backlog = resources["BacklogScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    metrics = {metric["Id"]: metric for metric in backlog["CustomizedMetricSpecification"]["Metrics"]}
    waiting = metrics["waiting"]["MetricStat"]["Metric"]
    cpu = resources["CpuScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    target = resources["ScalableTarget"]["Properties"]

    assert (waiting["Namespace"], waiting["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert waiting["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsQueue", "QueueName"]}}]
    assert resolved(resources["EventsQueue"]["Properties"]["QueueName"], prefix) == Names(prefix).queue
    assert metrics["tasks"]["MetricStat"]["Metric"]["MetricName"] == "RunningTaskCount"
    assert [metric["Id"] for metric in metrics.values() if metric["ReturnData"]] == ["per_task"]
    assert "waiting /" in metrics["per_task"]["Expression"]
    assert cpu["PredefinedMetricSpecification"] == {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}
    assert (target["MinCapacity"], target["MaxCapacity"]) == ({"Ref": "MinTasks"}, {"Ref": "MaxTasks"})
    assert resources["Cluster"]["Properties"]["ClusterSettings"] == [{"Name": "containerInsights", "Value": "enabled"}]


def test_the_alarms_watch_dead_letters_event_age_5xx_and_unhealthy_hosts(resources: dict[str, dict[str, Any]]) -> None:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    watched = {
        name: (alarm["Properties"].get("MetricName"), alarm["Properties"].get("Dimensions"))
        for name, alarm in alarms.items()
    }

    assert watched["DeadLettersAlarm"] == (
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}],
    )
    assert watched["OldestEventAlarm"] == (
        "ApproximateAgeOfOldestMessage",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsQueue", "QueueName"]}}],
    )
    assert watched["UnhealthyHostsAlarm"][0] == "UnHealthyHostCount"
    errors = {metric["Id"]: metric for metric in alarms["ServerErrorsAlarm"]["Properties"]["Metrics"]}
    assert {errors[i]["MetricStat"]["Metric"]["MetricName"] for i in ("target_errors", "balancer_errors")} == {
        "HTTPCode_Target_5XX_Count",
        "HTTPCode_ELB_5XX_Count",
    }
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
