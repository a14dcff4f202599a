"""The AWS clients of one process: one aioboto3 session, one client per service, opened for the
life of the backend.

Endpoint, region and credentials come from the standard AWS chain (``AWS_ENDPOINT_URL``,
``AWS_REGION``, environment keys, profile, container or instance role). Retries are botocore's
standard mode (bounded attempts with backoff) and every call has short connect and read timeouts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioboto3
from aiobotocore.config import AioConfig as Config
from botocore.exceptions import ClientError
from opentelemetry.trace import SpanKind, StatusCode

from lfusys.observability.metrics import DEPENDENCY_FAILURES
from lfusys.observability.tracing import tracer, tracing_configured
from lfusys.settings import AwsSettings
from lfusys.storage.aws.resources import Names

if TYPE_CHECKING:  # the client types are stubs, installed for development only
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_sqs import SQSClient


LONGEST_POLL = 20
"""Seconds an SQS long poll may wait (SQS's limit)."""
_POOL = 64
"""Connections per client: chunk PUTs, part copies and lookups all run at once."""


def error_code(exc: ClientError) -> str:
    """The code of an AWS error (``NoSuchKey``, ``ConditionalCheckFailedException``, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class AwsClients:
    names: Names
    s3: S3Client
    s3_streaming: S3Client
    """For request bodies streamed from a client: one attempt only, since a stream cannot be sent twice
    (the uploader sends the chunk again instead)."""
    sqs: SQSClient
    dynamodb: DynamoDBClient


def client_config(
    settings: AwsSettings, *, attempts: int | None = None, s3: bool = False, holds_open: float = 0
) -> Config:
    """``holds_open``: seconds the service may rightly keep a request waiting (an SQS long poll), on top
    of the read timeout."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": attempts or settings.aws_max_attempts},
        connect_timeout=settings.aws_connect_timeout.total_seconds(),
        read_timeout=settings.aws_read_timeout.total_seconds() + holds_open,
        max_pool_connections=_POOL,
        # Checksums only where an API requires them: chunks carry their own SHA-256.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    if s3:
        config = config.merge(
            Config(
                signature_version="s3v4",
                s3={
                    "addressing_style": "path" if settings.aws_path_style else "auto",
                    # Bodies are streamed, not read twice to sign them; their SHA-256 is checked by S3.
                    "payload_signing_enabled": False,
                },
            )
        )
    return config


_session: aioboto3.Session | None = None


def _process_session() -> aioboto3.Session:
    """The process's one aioboto3 session: it resolves credentials once and parses each service's
    API model once (about a tenth of a second per service), however often clients are opened."""
    global _session
    if _session is None:
        _session = aioboto3.Session()
    return _session


@asynccontextmanager
async def open_clients(settings: AwsSettings) -> AsyncIterator[AwsClients]:
    session = _process_session()
    async with AsyncExitStack() as stack:
        s3 = await stack.enter_async_context(session.client("s3", config=client_config(settings, s3=True)))
        s3_streaming = await stack.enter_async_context(
            session.client("s3", config=client_config(settings, attempts=1, s3=True))
        )
        sqs = await stack.enter_async_context(
            session.client("sqs", config=client_config(settings, holds_open=LONGEST_POLL))
        )
        dynamodb = await stack.enter_async_context(session.client("dynamodb", config=client_config(settings)))
        for client in (s3, s3_streaming, sqs, dynamodb):
            _observe_calls(client)
        yield AwsClients(Names(settings.aws_prefix), s3, s3_streaming, sqs, dynamodb)


_SPAN = "lfusys.span"
"""Where a call's span waits, in botocore's per-call context, between its start and its end."""


def _observe_calls(client: Any) -> None:
    """Count the retries of every call (a failing dependency); when traced, one client span per call
    (``S3.PutObject``), a child of the request or finalization that made it."""
    events = client.meta.events
    events.register("after-call", count_retries)
    if tracing_configured():
        events.register("before-call", _start_call_span)
        events.register("after-call", _end_call_span)
        events.register("after-call-error", _end_call_span)


def count_retries(parsed: dict[str, Any], **_: Any) -> None:
    retries = parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    if retries:
        DEPENDENCY_FAILURES.labels("aws").inc(retries)


def _start_call_span(model: Any, context: dict[str, Any], **_: Any) -> None:
    service = model.service_model.service_id
    context[_SPAN] = tracer().start_span(
        f"{service}.{model.name}",
        kind=SpanKind.CLIENT,
        attributes={"rpc.system": "aws-api", "rpc.service": str(service), "rpc.method": model.name},
    )
    # None: a before-call handler that answers would stand in for the call itself.


def _end_call_span(
    context: dict[str, Any], http_response: Any = None, exception: BaseException | None = None, **_: Any
) -> None:
    span = context.pop(_SPAN, None)
    if span is None:
        return
    if http_response is not None:
        span.set_attribute("http.status_code", http_response.status_code)
        if http_response.status_code >= 400:
            span.set_status(StatusCode.ERROR)
    if exception is not None:
        span.record_exception(exception)
        span.set_status(StatusCode.ERROR)
    span.end()
