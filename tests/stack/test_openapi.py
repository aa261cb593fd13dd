"""openapi.yml stays true: it is a valid OpenAPI document, it has exactly the app's routes, it lists
every error code the code can answer with, and schemathesis over the running server finds no 5xx
and no response outside it."""
from __future__ import annotations

import ast
import re
import runpy
import uuid

import hypothesis
import psycopg
import pytest
import schemathesis
import yaml

from lib import config
from lib.config import Settings
from devstack import LocalSettings
from tests.openapi_spec import SPEC_PATH, enum_of_error_body, error_responses, spec_operations

SOURCES = [config.ROOT / "app.py", *sorted((config.ROOT / "routes").glob("*.py")),
           *sorted((config.ROOT / "services").glob("*.py")), *sorted((config.ROOT / "lib").rglob("*.py")),
           *sorted((config.ROOT / "domain").rglob("*.py")),
           config.ROOT / "aws" / "lambdas" / "cruddur-post-confirmation.py"]
# Flask adds these to every rule; the spec describes CORS preflight in its description instead.
IMPLICIT_METHODS = {"head", "options"}
UNDOCUMENTED_RULES = {"static", "metrics"}  # endpoints, not part of the contract


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def app_operations(app) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED_RULES:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method.lower() not in IMPLICIT_METHODS:
                operations.add((path, method.lower()))
    return operations


# -- the spec against the app ------------------------------------------------------------------

def test_every_route_of_the_app_is_in_the_spec_and_vice_versa(settings: Settings, spec):
    from app import create_app

    app = create_app(settings)
    try:
        routes = app_operations(app)
    finally:
        app.extensions["parts"].db.close()
    assert routes == spec_operations(spec)
    assert ("/api/messages/{message_group_uuid}", "get") in routes  # the converter was mapped


def _string_constants(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [s for element in node.elts for s in _string_constants(element)]
    return []


# Parameters of the services' checks that name the error code they answer with.
CODE_PARAMETERS = {"code", "too_long", "blank", "invalid"}


def codes_in_source() -> dict[str, str]:
    """Every error code a constructor of a CruddurError (or the app's error helpers, or an error
    class's own super().__init__) is given in the source, and every default of a `code` parameter:
    {code: where}."""
    from domain.errors import CruddurError

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    # and the post-confirmation trigger's UserConflict, whose codes the API answers with
    error_classes = {CruddurError.__name__, "UserConflict", *(c.__name__ for c in subclasses(CruddurError))}
    found: dict[str, str] = {}
    for source in SOURCES:
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            where = f"{source.relative_to(config.ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in error_classes or name == "__init__":
                    codes = [s for arg in node.args for s in _string_constants(arg)]
                elif name == "error_response" and len(node.args) > 1:
                    codes = _string_constants(node.args[1])
                else:  # e.g. validation.text(..., too_long="message_exceed_max_chars")
                    codes = [s for k in node.keywords if k.arg in CODE_PARAMETERS
                             for s in _string_constants(k.value)]
                found.update({code: where for code in codes})
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    source.parent.name == "services":  # e.g. validation.canonical_uuid(code=...)
                arguments = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + \
                    list(node.args.defaults) + list(node.args.kw_defaults)
                for argument, default in zip(arguments, defaults):
                    if argument.arg in CODE_PARAMETERS and default is not None:
                        found.update({c: where for c in _string_constants(default)})
    return found


def codes_of_http_errors(settings: Settings) -> set[str]:
    """The codes the app derives from werkzeug's own errors: unknown route, wrong method, body
    too large."""
    from app import create_app
    from devstack import access_token

    app = create_app(settings)
    try:
        client = app.test_client()
        token = access_token(settings, "londo")
        responses = [client.get("/api/no-such-route"), client.delete("/api/messages"),
                     client.post("/api/messages", data=b"x" * (65 * 1024),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})]
    finally:
        app.extensions["parts"].db.close()
    assert [r.status_code for r in responses] == [404, 405, 413]
    return {code for r in responses for code in r.get_json()}


def test_every_error_code_of_the_code_is_in_the_spec_and_vice_versa(settings: Settings, spec):
    in_source = codes_in_source()
    # The code strings the brief and the contract name must all have been found in the source.
    assert {"token_missing", "token_malformed", "token_invalid", "token_expired", "user_unknown",
            "message_blank", "message_too_long", "message_invalid", "recipient_invalid",
            "handle_invalid", "message_group_uuid_invalid", "message_group_not_found",
            "user_not_found", "cannot_message_self", "cursor_invalid",
            "limit_invalid", "idempotency_key_invalid", "idempotency_key_reused", "body_invalid",
            "database_unavailable", "store_unavailable", "write_conflict",
            "internal_error", "message_exceed_max_chars", "ttl_invalid", "term_blank",
            "activity_not_found", "handle_taken", "email_taken", "user_invalid"} <= set(in_source)
    # and what gunicorn refuses before the app sees it (gunicorn.conf.py)
    gunicorn_codes = runpy.run_path(str(config.ROOT / "gunicorn.conf.py"))["PROTOCOL_ERROR_CODES"]
    produced = set(in_source) | codes_of_http_errors(settings) | set(gunicorn_codes.values())
    assert {"not_found", "method_not_allowed", "request_entity_too_large"} <= produced
    documented = set(spec["components"]["schemas"]["ErrorCode"]["enum"])
    missing = {code: in_source.get(code, "werkzeug") for code in produced - documented}
    assert not missing, f"error codes missing from openapi.yml: {missing}"
    assert not documented - produced, "codes in openapi.yml that nothing produces"
    # ...and each code appears in some operation's response, not just in the master list.
    in_responses = {c for _, _, response in error_responses(spec)
                    for c in enum_of_error_body(spec, response)}
    # (the ones any path may answer are told of once, in the spec's description)
    assert documented - in_responses <= {"not_found", "method_not_allowed", *gunicorn_codes.values()}


# -- schemathesis over the running server ---------------------------------------------------------

def make_user(settings: Settings, prefix: str) -> tuple[dict, str]:
    """A fresh user in PostgreSQL and the local Cognito pool: ({uuid, handle, display_name},
    access token)."""
    from lib import aws
    from devstack import access_token

    handle = f"{prefix}{uuid.uuid4().hex[:10]}"
    email = f"{handle}@example.test"
    client = aws.client(settings, "cognito-idp")
    created = client.admin_create_user(
        UserPoolId=settings.cognito_user_pool_id, Username=email, MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"},
                        {"Name": "name", "Value": f"Fuzz {handle}"},
                        {"Name": "preferred_username", "Value": handle}])
    sub = {a["Name"]: a["Value"] for a in created["User"]["Attributes"]}["sub"]
    client.admin_set_user_password(UserPoolId=settings.cognito_user_pool_id, Username=email,
                                   Password=LocalSettings().seed_password, Permanent=True)
    with psycopg.connect(settings.connection_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO public.users (display_name, handle, email, cognito_user_id) "
            "VALUES (%s, %s, %s, %s) RETURNING uuid::text",
            [f"Fuzz {handle}", handle, email, sub]).fetchone()
    return {"uuid": row[0], "handle": handle, "display_name": f"Fuzz {handle}"}, \
        access_token(settings, handle)


# gunicorn refuses longer request lines (414, not JSON) before the app sees them.
GUNICORN_REQUEST_LINE_LIMIT = 4094
# Not negative_data_rejection: the API ignores unknown query parameters, and the fuzzer's "missing
# Authorization" cases get the token added back; tests/stack/test_api_*.py checks each bad input.
FUZZ_CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_schema_conformance", "response_headers_conformance",
               "unsupported_method", "missing_required_header"]


@pytest.fixture(scope="module")
def fuzz_caller(api, settings: Settings) -> dict:
    """Where and as whom the fuzzer calls: the test server, as a fresh user (so that what it writes
    stays out of the seeded users' conversations as far as possible)."""
    _, token = make_user(settings, "fuzz")
    return {"base_url": api.url, "headers": {"Authorization": f"Bearer {token}"}}


# (schemathesis.pytest.from_fixture would build the schema in a fixture, but its lazy loader does
# not work with this pytest; the eager schema gets its server and token from `fuzz_caller`.)
fuzz = schemathesis.openapi.from_path(SPEC_PATH)
fuzz.config.generation.update(max_examples=40, deterministic=True)


@pytest.mark.slow
@fuzz.parametrize()
@hypothesis.settings(max_examples=40, derandomize=True, deadline=None, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_schemathesis_finds_no_server_error_and_no_response_outside_the_spec(case, fuzz_caller):
    from schemathesis import checks

    response = case.call(timeout=10, **fuzz_caller)
    if response.status_code == 414 and len(response.request.url) > GUNICORN_REQUEST_LINE_LIMIT:
        return  # answered by gunicorn, before the app (see the spec's description)
    case.validate_response(response, checks=[getattr(checks, name) for name in FUZZ_CHECKS],
                           headers=fuzz_caller["headers"])
