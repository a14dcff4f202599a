"""Tracing with OpenTelemetry: a server span per request (named by its route template), client spans for
AWS and Redis calls, and a span per finalization linked to the request that stored the upload's last
chunk (its W3C ``traceparent`` travels with the storage event, or with the S3 object's metadata).

Tracing is on when an OTLP endpoint is configured through the standard variables
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); the sampler, batch sizes
and service name come from the standard ``OTEL_*`` variables too. Otherwise nothing is installed: the
API's no-op tracer answers, and no request pays for a span.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import Link, Span

TRACER_NAME = "lfusys"
TRACEPARENT = "traceparent"
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_provider: Any = None


def tracing_configured() -> bool:
    """Whether the environment asks for traces (an OTLP endpoint, and the SDK not disabled)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(os.environ.get(name) for name in _ENDPOINT_VARIABLES)


def configure_tracing() -> bool:
    """Install the SDK's tracer provider with an OTLP/HTTP exporter, once per process, and instrument
    Redis; False (and nothing installed) when tracing is not configured."""
    global _provider
    if _provider is not None:
        return True
    if not tracing_configured():
        return False
    # Imported here: a process without tracing never loads the SDK or the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, which win over this default.
    resource = Resource.create({} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "lfusys"})
    provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER(_ARG)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    return True


def flush_traces() -> None:
    """Send the spans still batched (at shutdown)."""
    if _provider is not None:
        _provider.force_flush()


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the span in progress, if one is being recorded."""
    if not trace.get_current_span().is_recording():
        return None
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get(TRACEPARENT)


def links_to(traceparents: Iterable[str | None]) -> list[Link]:
    """Links to the spans these ``traceparent`` values name (unreadable ones are skipped)."""
    links = []
    for traceparent in traceparents:
        if not traceparent:
            continue
        context: Context = extract({TRACEPARENT: traceparent})
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            links.append(Link(span_context))
    return links


def name_server_span(method: str, route_template: str | None) -> None:
    """Name the request's span after its route (``PUT /api/v1/uploads/{upload_id}/chunks/{n}``), never
    its raw path, which would make every upload a span name of its own."""
    span: Span = trace.get_current_span()
    if route_template and span.is_recording():
        span.update_name(f"{method} {route_template}")
        span.set_attribute("http.route", route_template)


def trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the trace and span a log line was written in, when one is recorded."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event["trace_id"] = format(span_context.trace_id, "032x")
        event["span_id"] = format(span_context.span_id, "016x")
    return event


def asgi_tracing(app: Any) -> Any:
    """``app`` inside OpenTelemetry's ASGI middleware (one span per request; no spans for each piece of
    a streamed body, and URLs recorded without their query: a signed link's signature stays out)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    def without_query(span: Span, scope: dict[str, Any]) -> None:
        if span.is_recording():
            path = scope.get("path", "")
            span.set_attribute("http.target", path)
            span.set_attribute("http.url", path)
            span.set_attribute("url.query", "")

    return OpenTelemetryMiddleware(
        app,
        exclude_spans=["receive", "send"],
        excluded_urls="/health/,/metrics",
        default_span_details=lambda scope: (scope.get("method", "HTTP"), {}),
        server_request_hook=without_query,
    )
