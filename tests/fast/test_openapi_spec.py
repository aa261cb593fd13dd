"""openapi.yml is a valid OpenAPI document whose every operation documents its parameters,
security and errors, each error an array of known codes. That it has exactly the app's routes and
codes: tests/stack/test_openapi.py."""
from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate as validate_spec

from tests.openapi_spec import enum_of_error_body, error_responses, load, resolve, spec_operations


@pytest.fixture(scope="module")
def spec() -> dict:
    return load()


def test_spec_is_a_valid_openapi_document(spec):
    validate_spec(spec)
    assert spec["openapi"].startswith("3.")


def test_every_operation_documents_parameters_security_and_errors(spec):
    security = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (security["type"], security["scheme"]) == ("http", "bearer")
    public = {("/api/health-check", "get"), ("/api/ready", "get"), ("/api/users/@{handle}/short", "get"),
              ("/api/activities/home", "get"), ("/api/activities/@{handle}", "get"),
              ("/api/activities/search", "get"), ("/api/activities/{activity_uuid}", "get"),
              ("/api/activities/@{handle}/status/{activity_uuid}", "get")}
    optional = {("/api/activities/notifications", "get")}  # no token: an empty list
    by_ticket = {("/api/events", "get")}  # EventSource sends no header: a ticket in the query
    for path, method in spec_operations(spec):
        operation = spec["paths"][path][method]
        responses = {str(s) for s in operation["responses"]}
        assert {"200", "500", "503"} <= responses, (path, method)
        declared = {resolve(spec, p)["name"] for p in operation.get("parameters", [])}
        assert set(re.findall(r"{([^}]+)}", path)) <= declared, (path, method)
        if (path, method) in public:
            assert operation["security"] == []
        elif (path, method) in by_ticket:
            assert operation["security"] == [] and "401" in responses and "ticket" in declared
        elif (path, method) in optional:
            assert operation["security"] == [{}, {"bearerAuth": []}]
            assert "401" in responses
        else:
            assert "security" not in operation  # the global bearer requirement applies
            assert "401" in responses and "403" in responses
        for status, response in operation["responses"].items():
            if str(status) == "503":
                assert resolve(spec, response)["headers"]["Retry-After"]
    pages = [("/api/message_groups", "get"), ("/api/messages/{message_group_uuid}", "get"),
             ("/api/activities/home", "get"), ("/api/activities/@{handle}", "get"),
             ("/api/activities/notifications", "get"), ("/api/activities/search", "get")]
    for path, method in pages:
        operation = spec["paths"][path][method]
        names = {resolve(spec, p)["name"] for p in operation["parameters"]}
        assert {"limit", "cursor"} <= names
        assert "Link" in resolve(spec, operation["responses"]["200"])["headers"]
        assert "400" in operation["responses"]
    limit = spec["components"]["parameters"]["Limit"]["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 100)
    post = spec["paths"]["/api/messages"]["post"]
    assert "Idempotency-Key" in {resolve(spec, p)["name"] for p in post["parameters"]}
    assert {"400", "404", "413", "422"} <= set(post["responses"])
    body = resolve(spec, post["requestBody"]["content"]["application/json"]["schema"])
    assert body["additionalProperties"] is True  # decided: extra fields are ignored


def test_every_error_response_is_an_array_of_known_codes(spec):
    known = spec["components"]["schemas"]["ErrorCode"]["enum"]
    assert len(known) == len(set(known))
    for operation, status, response in error_responses(spec):
        codes = enum_of_error_body(spec, response)
        assert codes and set(codes) <= set(known), (operation, status)
