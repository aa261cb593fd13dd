"""OpenTelemetry traces (lib/telemetry.py): with an exporter, a request is one server span and a
client span per DynamoDB call or PostgreSQL query it makes; without one, nothing is traced."""
from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app import create_app
from lib import telemetry
from devstack import access_token


@pytest.fixture
def traced(settings):
    exporter = InMemorySpanExporter()
    app = create_app(settings, span_exporter=exporter)
    try:
        yield app, exporter
    finally:
        app.extensions["parts"].db.close()
        telemetry.shutdown(app.extensions["tracing"])


def test_a_list_request_is_one_server_span_and_one_dynamodb_span(traced, settings, caplog):
    app, exporter = traced
    client = app.test_client()
    auth = {"Authorization": f"Bearer {access_token(settings, 'bayko')}"}
    assert client.get("/api/message_groups", headers=auth).status_code == 200  # warms the caches
    exporter.clear()
    with caplog.at_level(logging.INFO, logger="cruddur.access"):
        assert client.get("/api/message_groups", headers=auth).status_code == 200
    spans = exporter.get_finished_spans()
    [server] = [s for s in spans if s.kind == SpanKind.SERVER]
    [dynamodb] = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert len(spans) == 2
    assert server.attributes["http.route"] == "/api/message_groups"
    assert dynamodb.name == "DynamoDB.Query" and dynamodb.attributes["rpc.service"] == "DynamoDB"
    assert dynamodb.context.trace_id == server.context.trace_id
    assert dynamodb.parent.span_id == server.context.span_id
    # the access log line names the trace
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cruddur.access"]
    assert line["trace_id"] == format(server.context.trace_id, "032x")


def test_postgresql_queries_are_spans_of_their_request(traced):
    app, exporter = traced
    assert app.test_client().get("/api/users/@bayko/short").status_code == 200
    spans = exporter.get_finished_spans()
    [server] = [s for s in spans if s.kind == SpanKind.SERVER]
    queries = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
    assert queries and all(q.context.trace_id == server.context.trace_id for q in queries)


def test_without_an_endpoint_nothing_is_traced(settings, caplog):
    app = create_app(settings)
    try:
        assert app.extensions["tracing"] is None
        with caplog.at_level(logging.INFO, logger="cruddur.access"):
            assert app.test_client().get("/api/health-check").status_code == 200
        [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cruddur.access"]
        assert line["trace_id"] is None
    finally:
        app.extensions["parts"].db.close()


def test_a_live_event_ticket_never_reaches_a_span(traced):
    """A ticket opens its user's stream: like the access log, the traces keep no copy of it."""
    app, exporter = traced
    secret = "s3cret-ticket-value"
    for query in (f"ticket={secret}", f"last_event_id=4&ticket={secret}&x=1"):
        response = app.test_client().get(f"/api/events?{query}")
        assert response.status_code == 401
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert len(servers) == 2
    assert not [(s.name, k, v) for s in spans for k, v in s.attributes.items() if secret in str(v)]
    assert any("ticket=REDACTED" in str(v) for s in servers for v in s.attributes.values())
