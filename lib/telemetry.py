"""OpenTelemetry traces: a server span for every request, with client spans for its DynamoDB and
Cognito calls (botocore) and PostgreSQL queries (psycopg), through the standard instrumentations.

Exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
is set, with the exporter's own environment variables (headers, timeout, ...). Unset, nothing is
instrumented at all: tracing then costs nothing. The access log line carries the trace id.
"""
from __future__ import annotations

import re
from typing import Any

from opentelemetry import trace

SERVICE_NAME = "cruddur-messages"


def setup(app: Any, endpoint: str | None, exporter: Any | None = None) -> Any | None:
    """Instrument the app, botocore and psycopg, exporting to `exporter` (tests) or over OTLP to
    `endpoint`; nothing when neither is given. Returns the TracerProvider, or None."""
    if exporter is None and not endpoint:
        return None
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # the exporter reads OTEL_EXPORTER_OTLP_* itself (endpoint, headers, timeout)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider, response_hook=without_secrets)
    BotocoreInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider)
    return provider


# Query parameters that open something and must not reach a trace: a live-event ticket opens its
# user's stream (the access log leaves the query out altogether).
SECRET_PARAMETERS = re.compile(r"(^|[?&])(ticket)=[^&#]*")


def without_secrets(span: Any, status: str, headers: Any) -> None:
    """The server span's URL attributes (http.target, http.url, url.query, ...) with the value
    of every secret query parameter replaced, before the span ends and is exported. A response
    hook: the instrumentation sets the request's attributes after its request hook runs."""
    if span is None or not span.is_recording():
        return
    for key, value in list((getattr(span, "attributes", None) or {}).items()):
        if isinstance(value, str) and SECRET_PARAMETERS.search(value):
            span.set_attribute(key, SECRET_PARAMETERS.sub(r"\1\2=REDACTED", value))


def shutdown(provider: Any | None) -> None:
    """Flush and stop: the instrumentations of botocore and psycopg are process-wide."""
    if provider is None:
        return
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    BotocoreInstrumentor().uninstrument()
    PsycopgInstrumentor().uninstrument()
    provider.shutdown()


def current_trace_id() -> str | None:
    """The trace id of the span under way, as 32 hex digits; None when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
