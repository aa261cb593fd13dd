"""Hypothesis over the services: whatever a client sends, the answer is a result or a 4xx
CruddurError, and nothing invalid is ever stored."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from app import status_of
from lib import ddb as dynamo
from lib.conversations import layout
from lib.ddb import Ddb
from domain.errors import CruddurError
from devstack.seed import user_by_handle
from services import validation
from services.bootstrap import Parts
from services.create_message import CreateMessage
from services.message_groups import MessageGroups
from services.messages import Messages
from services.users_short import UsersShort
from tests import tables


@pytest.fixture(scope="module")
def fuzz_parts(settings):
    """The app's parts over a table of its own, so that what the fuzzer stores can be checked whole."""
    import uuid

    own = settings.with_(ddb_table=f"fuzz-{uuid.uuid4().hex[:12]}", cursor_secret="fuzz")
    tables.create_table(Ddb(own))
    parts = Parts.from_settings(own)
    yield parts
    parts.db.close()
    parts.conversations.table.delete_table()


@pytest.fixture(scope="module")
def people(fuzz_parts):
    return {h: user_by_handle(fuzz_parts.db, h) for h in ("andrewbrown", "bayko", "londo")}


texts = st.one_of(
    st.text(max_size=40),
    st.text(min_size=1000, max_size=1100),
    st.sampled_from(["", " ", "\t\n", "ok", "x" * 1024, "x" * 1025, " y ", "\x00", "é" * 1024,
                     "<script>alert(1)</script>", "'; DROP TABLE users; --"]),
)
values = st.one_of(texts, st.none(), st.integers(), st.booleans(), st.floats(allow_nan=True),
                   st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
handles = st.one_of(st.sampled_from(["bayko", "londo", "andrewbrown", "nobody", "", "BAYKO", "bay ko"]), values)
groups = st.one_of(st.sampled_from(["not-a-uuid", "00000000-0000-0000-0000-000000000000",
                                    "6F1C3C55-8D3E-4A53-9D0B-6F8F3B1A2C4D"]), st.uuids().map(str), values)
HANDLES = ["andrewbrown", "bayko", "londo"]
# "PAIR:a:b" stands for the group of users a and b, filled in by the test (it needs their uuids).
pairs = st.tuples(st.sampled_from(HANDLES), st.sampled_from(HANDLES)).map(lambda p: f"PAIR:{p[0]}:{p[1]}")
bodies = st.one_of(
    values,
    st.fixed_dictionaries({}, optional={"message": texts, "handle": handles,
                                        "message_group_uuid": groups, "extra": values}),
    st.fixed_dictionaries({"message": texts, "handle": st.sampled_from(HANDLES)}),
    st.fixed_dictionaries({"message": texts, "message_group_uuid": pairs}),
)


def resolve_pairs(body, people):
    if isinstance(body, dict) and str(body.get("message_group_uuid", "")).startswith("PAIR:"):
        _, a, b = body["message_group_uuid"].split(":")
        body = {**body, "message_group_uuid": layout.group_uuid_for(people[a]["uuid"], people[b]["uuid"])}
    return body


def test_create_message_answers_or_refuses_and_stores_no_junk(fuzz_parts, people):
    """Whatever is sent, a result or a 4xx; then, every item the fuzzer stored is well formed."""

    @hsettings(max_examples=150, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow])
    @given(body=bodies, sender=st.sampled_from(["andrewbrown", "bayko", "londo"]),
           key=st.one_of(st.none(), st.sampled_from(["k1", "k2", "bad key", ""])))
    def fuzz(body, sender, key):
        try:
            key = validation.idempotency_key(key)
            result = CreateMessage.run(fuzz_parts.conversations, fuzz_parts.users, fuzz_parts.blocks, people[sender], resolve_pairs(body, people), key)
        except CruddurError as error:
            assert 400 <= status_of(error) < 500, error.codes
            assert error.codes and all(isinstance(c, str) for c in error.codes)
            return
        assert set(result) >= {"uuid", "display_name", "handle", "message", "created_at"}
        assert ("message_group_uuid" in result) == (isinstance(body, dict) and body.get("handle") is not None)
        assert 1 <= len(result["message"]) <= validation.DIRECT_MESSAGE_MAX_LENGTH
        assert result["message"] == result["message"].strip()

    fuzz()
    assert_stored_no_junk(fuzz_parts, people)


@hsettings(max_examples=60, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(group=st.one_of(groups, pairs), limit=st.integers(min_value=1, max_value=100),
       cursor=st.one_of(st.none(), st.text(max_size=80), st.sampled_from(["a.b", ".", "e30.AAAA"])))
def test_reading_answers_or_refuses(fuzz_parts, people, group, limit, cursor):
    group = resolve_pairs({"message_group_uuid": group}, people)["message_group_uuid"]
    parts, bayko = fuzz_parts, people["bayko"]
    for call in (lambda: Messages.run(parts.conversations, parts.names, parts.cursors, bayko, group, limit, cursor),
                 lambda: MessageGroups.run(parts.conversations, parts.names, parts.cursors, bayko, limit, cursor)):
        try:
            items, _ = call()
        except CruddurError as error:
            assert 400 <= status_of(error) < 500
            continue
        assert isinstance(items, list)


@hsettings(max_examples=60, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(handle=handles)
def test_users_short_answers_or_refuses(fuzz_parts, handle):
    try:
        user = UsersShort.run(fuzz_parts.users, handle)
    except CruddurError as error:
        assert status_of(error) == 404
        return
    assert set(user) == {"uuid", "handle", "display_name"}


def assert_stored_no_junk(fuzz_parts, people):
    """Every item of the fuzzer's table is well formed."""
    client = fuzz_parts.conversations.table.client
    pages = client.get_paginator("scan").paginate(TableName=fuzz_parts.conversations.table.table)
    items = [dynamo.deserialize(i) for page in pages for i in page["Items"]]
    assert items, "the fuzzers stored nothing: the test would prove nothing"
    uuids = {p["uuid"] for p in people.values()}
    headers = {i["pk"][len(layout.HEADER_PREFIX):]: i for i in items if i["pk"].startswith(layout.HEADER_PREFIX)}
    for item in items:
        if item["pk"].startswith(layout.MESSAGE_PREFIX):
            text = item["message"]
            assert 1 <= len(text) <= validation.DIRECT_MESSAGE_MAX_LENGTH and text == text.strip()
            assert "\x00" not in text
            group = layout.message_group_uuid_of(item)
            # Stored only into a group that exists, by one of its participants.
            assert group in headers
            assert item["user_uuid"] in headers[group]["participants"]
        elif item["pk"].startswith(layout.HEADER_PREFIX):
            assert len(item["participants"]) == 2 and set(item["participants"]) <= uuids
            assert item["participants"][0] != item["participants"][1]
        elif item["pk"].startswith(layout.GROUP_PREFIX):
            assert item["user_uuid"] in uuids and item["message_group_uuid"] in headers
        elif item["pk"] == layout.LAYOUT_KEY["pk"]:
            assert item["version"] == layout.LAYOUT_VERSION
        else:
            assert item["pk"].startswith(layout.IDEMPOTENCY_PREFIX)
