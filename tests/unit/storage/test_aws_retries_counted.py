"""Every AWS call that botocore had to retry is a failing dependency on /metrics."""

from __future__ import annotations

from prometheus_client import REGISTRY

from lfusys.storage.aws.clients import count_retries


def exported_aws_failures() -> float:
    return REGISTRY.get_sample_value("lfusys_dependency_failures_total", {"dependency": "aws"}) or 0.0


def test_retries_are_counted_and_a_first_time_success_is_not() -> None:
    before = exported_aws_failures()

    count_retries(parsed={"ResponseMetadata": {"RetryAttempts": 2, "HTTPStatusCode": 200}})
    count_retries(parsed={"ResponseMetadata": {"RetryAttempts": 0, "HTTPStatusCode": 200}})
    count_retries(parsed={})  # an answer without metadata

    assert exported_aws_failures() - before == 2
