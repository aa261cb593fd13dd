"""Faults below the API: PostgreSQL going away and coming back, DynamoDB throttling and 5xx."""
from __future__ import annotations

import json
import time

import pytest

from app import create_app
from lib import db as pg_admin
from lib import ddb as dynamo
from lib.conversations import layout
from cli import db as db_cli
from devstack import DATABASE, LocalPostgres, access_token, children_of, free_port
from services.bootstrap import Parts
from tests import tables


@pytest.fixture
def own_postgres(pg_data_dir, settings):
    """A PostgreSQL of this test's own, not yet started, so that it can be stopped and started."""
    pg = LocalPostgres(pg_data_dir, free_port())
    own = settings.with_(connection_url=f"postgresql://postgres@127.0.0.1:{pg.port}/{DATABASE}",
                         db_timeout_seconds=1.0, cursor_secret="faults")
    yield pg, own
    pg.stop()


def _until(check, seconds: float = 15.0):
    """Poll until check() is truthy (bounded), returning its last value."""
    deadline = time.monotonic() + seconds
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(0.1)
        value = check()
    return value


def test_postgres_down_at_start_then_up_then_down_again(own_postgres, settings):
    pg, own = own_postgres
    app = create_app(own)
    client = app.test_client()
    token = access_token(settings, "bayko")
    auth = {"Authorization": f"Bearer {token}"}

    # Down at start: the app starts anyway and says so, promptly.
    started = time.monotonic()
    response = client.get("/api/health-check")
    assert response.status_code == 503
    assert response.json == ["database_unavailable"]
    assert response.headers["Retry-After"]
    protected = client.get("/api/message_groups", headers=auth)
    assert protected.status_code == 503 and protected.json == ["database_unavailable"]
    assert time.monotonic() - started < 10  # bounded by the pool timeout, not a hang

    # PostgreSQL arrives: the API recovers by itself.
    pg.start()
    pg_admin.setup_database(own.connection_url)
    db_cli.update_cognito_user_ids(own)
    assert _until(lambda: client.get("/api/health-check").status_code == 200)
    assert client.get("/api/message_groups", headers=auth).status_code == 200

    # Down mid-run: a caller not yet cached needs PostgreSQL and gets 503, not 500 or a hang.
    pg.stop()
    app.extensions["parts"].known_users.clear()
    assert _until(lambda: client.get("/api/health-check").status_code == 503)
    assert client.get("/api/message_groups", headers=auth).status_code == 503

    # And back again.
    pg.start()
    assert _until(lambda: client.get("/api/message_groups", headers=auth).status_code == 200)


def test_pool_is_bounded_with_timeouts(settings):
    backend = Parts.from_settings(settings.with_(db_pool_max=3, db_timeout_seconds=2.0))
    try:
        assert backend.db.pool.max_size == 3
        assert backend.db.pool.timeout == 2.0
    finally:
        backend.db.close()


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_):
        yield self._body


def inject_dynamodb_errors(client, status: int, code: str, times: int | None):
    """Make the next `times` DynamoDB requests of `client` (all, when None) answer with an error,
    at the botocore level, so that botocore's own retry logic sees them. Returns a list that
    records every request sent."""
    from botocore.awsrequest import AWSResponse

    sent: list[str] = []

    def answer(request, **_):
        sent.append(request.headers.get("X-Amz-Target", b"").decode())
        if times is None or len(sent) <= times:
            body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                               "message": "injected"}).encode()
            return AWSResponse(request.url, status, {"x-amzn-errortype": code}, _Raw(body))
        return None  # let the real request through

    client.meta.events.register_first("before-send.dynamodb", answer)
    return sent


@pytest.fixture
def faulty(fresh_table):
    """An app over a fresh table, with its backend at hand for injecting faults (the table's
    layout already read, so that the faults fall on the requests' own calls)."""
    backend = Parts.from_settings(fresh_table.with_(cursor_secret="faults"))
    assert backend.conversations.layout_current()
    app = create_app(fresh_table, backend)
    yield app, backend
    backend.db.close()


@pytest.mark.parametrize("status,code", [
    (400, "ProvisionedThroughputExceededException"),
    (500, "InternalServerError"),
    (503, "ServiceUnavailable"),
])
def test_transient_dynamodb_errors_are_retried(faulty, settings, status, code):
    app, backend = faulty
    sent = inject_dynamodb_errors(backend.conversations.table.client, status, code, times=2)
    auth = {"Authorization": f"Bearer {access_token(settings, 'andrewbrown')}"}
    response = app.test_client().post("/api/messages", headers=auth,
                                      json={"message": "through the storm", "handle": "londo"})
    assert response.status_code == 200, response.json
    # two injected failures, then the real header put (the third attempt), then the message and
    # the two group rows
    assert len(sent) == 6 and set(sent) == {"DynamoDB_20120810.PutItem"}
    group = response.json["message_group_uuid"]
    assert [m["message"] for m in tables.messages_page(backend.conversations.table, group, 10).items] == ["through the storm"]


def _items(backend: Parts) -> list[dict]:
    """Everything in the backend's table but its layout mark, read through a client of its own
    (no injected faults)."""
    client = dynamo.Ddb(backend.settings).client
    pages = client.get_paginator("scan").paginate(TableName=backend.conversations.table.table)
    items = [dynamo.deserialize(i) for page in pages for i in page["Items"]]
    return [i for i in items if i["pk"] != layout.LAYOUT_KEY["pk"]]


@pytest.mark.parametrize("status,code", [
    (400, "ProvisionedThroughputExceededException"),
    (500, "InternalServerError"),
])
def test_persistent_dynamodb_errors_are_503_and_leave_nothing(faulty, settings, status, code):
    app, backend = faulty
    client = app.test_client()
    auth = {"Authorization": f"Bearer {access_token(settings, 'andrewbrown')}"}
    sent = inject_dynamodb_errors(backend.conversations.table.client, status, code, times=None)

    created = client.post("/api/messages", headers=auth, json={"message": "first", "handle": "londo"})
    assert created.status_code == 503
    assert created.json == ["store_unavailable"]
    assert created.headers["Retry-After"]
    assert len(sent) > 1  # retried before giving up
    listing = client.get("/api/message_groups", headers=auth)
    assert listing.status_code == 503 and listing.json == ["store_unavailable"]

    assert _items(backend) == []


def throttle_puts(client, refuse) -> list[str]:
    """Every PutItem whose item's pk `refuse` accepts is throttled (as after botocore's retries);
    returns the pks of the PutItems sent."""
    from botocore.awsrequest import AWSResponse

    puts: list[str] = []

    def answer(request, **_):
        if request.headers.get("X-Amz-Target", b"").endswith(b"PutItem"):
            puts.append(json.loads(request.body)["Item"]["pk"]["S"])
            if refuse(puts[-1]):
                body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                                   "message": "injected"}).encode()
                return AWSResponse(request.url, 400, {}, _Raw(body))
        return None

    client.meta.events.register_first("before-send.dynamodb", answer, unique_id="throttle_puts")
    return puts


def test_a_retry_after_the_idempotency_record_writes_the_recorded_message(faulty, settings):
    """The record of an Idempotency-Key is written before its message. A request stopped between
    the two (the message refused): its retry writes that very message (the record's uuid and
    time), once, and a further retry replays it."""
    app, backend = faulty
    client = app.test_client()
    auth = {"Authorization": f"Bearer {access_token(settings, 'andrewbrown')}"}
    group = client.post("/api/messages", headers=auth, json={"message": "hi", "handle": "londo"}).json[
        "message_group_uuid"]
    headers = {**auth, "Idempotency-Key": "cut-short"}
    body = {"message": "once", "message_group_uuid": group}

    throttle_puts(backend.conversations.table.client, lambda pk: pk.startswith(layout.MESSAGE_PREFIX))
    assert client.post("/api/messages", headers=headers, json=body).status_code == 503
    backend.conversations.table.client.meta.events.unregister("before-send.dynamodb", unique_id="throttle_puts")
    [record] = [i for i in _items(backend) if i["pk"].startswith(layout.IDEMPOTENCY_PREFIX)]

    retried = client.post("/api/messages", headers=headers, json=body)
    assert retried.status_code == 200
    assert (retried.json["uuid"], retried.json["created_at"]) == (record["message_uuid"], record["created_at"])
    assert client.post("/api/messages", headers=headers, json=body).json == retried.json
    stored = [m["message"] for m in tables.messages_page(backend.conversations.table, group, 10).items]
    assert stored == ["once", "hi"]
    assert tables.group_rows(backend.conversations.table, group) and all(
        "message" in row for row in tables.group_rows(backend.conversations.table, group)), "only group rows are in the index"


def test_a_first_message_cut_short_after_its_header_is_503_and_its_retry_completes_it(faulty, settings):
    """A first message writes the header, the message, then the rows (plain writes, no
    transaction). The store refuses every write after the header: the client is told to try
    again, only the header is stored (nobody sees a conversation yet), and the retry finds the
    header and completes the conversation, with one row per participant."""
    app, backend = faulty
    client = app.test_client()
    auth = {"Authorization": f"Bearer {access_token(settings, 'andrewbrown')}"}
    body = {"message": "hello", "handle": "londo"}
    throttle_puts(backend.conversations.table.client, lambda pk: not pk.startswith(layout.HEADER_PREFIX))
    response = client.post("/api/messages", headers=auth, json=body)
    assert response.status_code == 503 and response.json == ["store_unavailable"]
    assert [i["pk"][:6] for i in _items(backend)] == [layout.HEADER_PREFIX]
    assert client.get("/api/message_groups", headers=auth).json == []

    backend.conversations.table.client.meta.events.unregister("before-send.dynamodb", unique_id="throttle_puts")
    retried = client.post("/api/messages", headers=auth, json=body)
    assert retried.status_code == 200, retried.json
    group = retried.json["message_group_uuid"]
    assert [m["message"] for m in tables.messages_page(backend.conversations.table, group, 10).items] == ["hello"]
    # the retry found the header taken: a message into the group, whose rows the stream Lambda
    # makes from the header (the API does not look for them)
    from devstack.stream_worker import load_lambda
    stream = load_lambda()
    stream.reset()
    message = tables.messages_page(backend.conversations.table, group, 1).items[0]
    config = stream.Config(table=backend.conversations.table.table, move_attempts=2)
    own = dynamo.Ddb(backend.settings).client
    assert stream.apply_message(own, config, stream.NewMessage(
        group=group, sk=message["sk"], text=message["message"], message_uuid=message["message_uuid"],
        sender=message["user_uuid"])) == "moved"
    listing = client.get("/api/message_groups", headers=auth).json
    assert [(g["uuid"], g["message"], g["handle"]) for g in listing] == [(group, "hello", "londo")]


def test_body_over_64_kib_is_413_before_parsing(faulty, settings):
    app, backend = faulty
    auth = {"Authorization": f"Bearer {access_token(settings, 'andrewbrown')}",
            "Content-Type": "application/json"}
    body = json.dumps({"message": "x" * (65 * 1024), "handle": "londo"})
    response = app.test_client().post("/api/messages", headers=auth, data=body)
    assert response.status_code == 413
    assert response.json == ["request_entity_too_large"]
    assert _items(backend) == []


def test_unreachable_user_pool_keys_are_503_not_401(settings):
    """Cognito's JWKS out of reach: nobody's token can be checked, which is not their fault."""
    closed = f"http://127.0.0.1:{free_port()}"
    app = create_app(settings.with_(service_endpoints=(("cognito-idp", closed),), cursor_secret="x"))
    auth = {"Authorization": f"Bearer {access_token(settings, 'bayko')}"}
    response = app.test_client().get("/api/message_groups", headers=auth)
    assert response.status_code == 503
    assert response.json == ["auth_unavailable"]
    assert response.headers["Retry-After"]


def test_a_frozen_postgres_is_a_503_within_its_timeout_not_a_hang(own_postgres, settings):
    """PostgreSQL stopped dead (SIGSTOP: its kernel still accepts connections and answers
    keepalives, its processes answer nothing) while requests that need it arrive: each is a 503
    with Retry-After within DB_TIMEOUT_SECONDS + 1 s (the client's timeout here), and the API is
    back as soon as PostgreSQL is."""
    import os
    import signal
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from devstack import Stack, start_api

    pg, own = own_postgres
    pg.start()
    pg_admin.setup_database(own.connection_url)
    db_cli.update_cognito_user_ids(own)
    stack = Stack()
    try:
        url = start_api(own, stack, free_port(), workers=1,
                        env={"DB_TIMEOUT_SECONDS": "1", "USER_CACHE_SECONDS": "0"})
        auth = {"Authorization": f"Bearer {access_token(settings, 'bayko')}"}
        paths = ["/api/health-check", "/api/message_groups", "/api/users/@bayko/short"] * 4
        for path in paths[:3]:  # the pool holds connections to the server about to freeze
            assert requests.get(url + path, headers=auth, timeout=10).status_code == 200
        # the postmaster and every backend (each calls setsid(): one process group won't do)
        frozen = [pg.proc.pid, *children_of(pg.proc.pid)]
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(len(paths)) as pool:
                answers = list(pool.map(
                    lambda path: requests.get(url + path, headers=auth, timeout=2.0), paths))
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        assert [a.status_code for a in answers] == [503] * len(paths)
        assert all(a.json() == ["database_unavailable"] and a.headers["Retry-After"] for a in answers)
        assert _until(lambda: requests.get(url + paths[1], headers=auth, timeout=10).status_code == 200)
    finally:
        stack.stop()
