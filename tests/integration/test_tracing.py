"""Traces of one upload, as a collector receives them: a server span per request named by its route,
client spans for AWS and Redis calls inside them, and a finalization span (``upload.id``) linked to
the request that stored the last chunk; log lines carry the trace id. Without an OTLP endpoint nothing
is installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lfusys.forwarded import ForwardedHeaders
from lfusys.observability.request_context import RequestContext
from lfusys.observability.tracing import tracing_configured
from tests.conftest import AppFactory
from tests.otlp_receiver import CLIENT, SERVER, OtlpReceiver
from tests.redis_server import redis_env
from tests.support import LiveServer, log_lines, random_bytes, signed_in, upload_file

CHUNK_SIZE = 64 * 1024
CHUNK_PUT = "PUT /api/v1/uploads/{upload_id}/chunks/{n}"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.mark.durable_only("a real server process exports its spans")
async def test_one_upload_is_one_tree_of_request_spans_and_a_linked_finalization(
    tmp_path: Path, data_dir: Path, backend_name: str, receiver: OtlpReceiver
) -> None:
    log_path = tmp_path / "server.log"
    server = LiveServer(
        data_dir,
        log_path,
        backend=backend_name,
        workers=1,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        LFUSYS_MIN_CHUNK_SIZE="1024",
        LFUSYS_DEFAULT_CHUNK_SIZE=str(CHUNK_SIZE),
        **redis_env(data_dir),
    )
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            await signed_in(client)
            done = await upload_file(client, random_bytes(3 * CHUNK_SIZE))
        assert done["status"] == "completed"
        puts = receiver.wait_for(CHUNK_PUT, count=3)
        [finalized] = receiver.wait_for("finalize upload")
    finally:
        server.stop()

    assert all(span.kind == SERVER and span.service == "lfusys" for span in puts)
    assert all(span.attributes["http.route"] == "/api/v1/uploads/{upload_id}/chunks/{n}" for span in puts)
    # Span names are route templates; no URL keeps its query.
    assert not [span for span in receiver.spans if done["upload_id"] in span.name]
    assert not [span for span in receiver.spans if "?" in str(span.attributes.get("http.url", ""))]

    assert finalized.attributes["upload.id"] == done["upload_id"]
    assert finalized.parent_span_id == ""  # a trace of its own, linked to the request
    put_ids = {(span.trace_id, span.span_id) for span in puts}
    assert finalized.links
    assert set(finalized.links) <= put_ids

    by_id = {span.span_id: span for span in receiver.spans}
    redis_calls = [span for span in receiver.spans if span.attributes.get("db.system") == "redis"]
    assert redis_calls, "rate limits and caches ask Redis"
    assert all(span.kind == CLIENT for span in redis_calls)
    if backend_name == "aws":
        s3_puts = receiver.named("S3.PutObject")
        assert len(s3_puts) == 3
        assert {by_id[span.parent_span_id].name for span in s3_puts} == {CHUNK_PUT}
        assert all(span.kind == CLIENT and span.attributes["rpc.service"] == "S3" for span in s3_puts)
        in_finalization = [span for span in receiver.spans if span.trace_id == finalized.trace_id]
        assert {span.name for span in in_finalization} >= {"finalize upload", "S3.CompleteMultipartUpload"}

    traced_lines = {
        line["trace_id"]
        for line in log_lines(log_path.read_text())
        if line.get("event") == "request" and line.get("route") == "/api/v1/uploads/{upload_id}/chunks/{n}"
    }
    assert traced_lines == {span.trace_id for span in puts}


def test_without_an_endpoint_tracing_is_off_and_nothing_is_installed(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)

    app = app_factory()

    assert not tracing_configured()
    handler = app.asgi_handler
    assert isinstance(handler, ForwardedHeaders)
    assert isinstance(handler.app, RequestContext)  # no tracing middleware in between


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces", "OTEL_TRACES_EXPORTER": "none"},
    ],
)
def test_the_standard_variables_can_turn_tracing_off(
    variables: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    assert not tracing_configured()


def test_an_endpoint_turns_tracing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")

    assert tracing_configured()
