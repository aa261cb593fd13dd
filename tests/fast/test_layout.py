"""The table's layout (lib/conversations/layout.py): keys, items, and the time format they sort
by (domain/times.py); the helper's (de)serialisation; the seed's items."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from devstack import seed as local_seed
from domain import times
from lib import ddb as dynamo
from lib.conversations import layout

ALICE = {"uuid": "11111111-1111-4111-8111-111111111111", "display_name": "Alice A", "handle": "alice"}
BOB = {"uuid": "22222222-2222-4222-8222-222222222222", "display_name": "Bob B", "handle": "bob"}


def test_table_definition_without_flag_has_no_throughput():
    definition = layout.table_definition("t")
    assert definition["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in definition
    assert "ProvisionedThroughput" not in definition["GlobalSecondaryIndexes"][0]


def test_key_functions():
    assert layout.group_pk("u1") == "GRP#u1"
    assert layout.message_pk("g1") == "MSG#g1"
    assert layout.header_key("g1") == {"pk": "GROUP#g1", "sk": "GROUP"}
    assert layout.idempotency_key("u1", "k1") == {"pk": "IDEM#u1", "sk": "k1"}


def test_group_row_names_the_other_participant():
    row = layout.group_row(ALICE["uuid"], BOB, "g1", "hello", "2025-01-01T00:00:00.000000+00:00")
    assert row == {"pk": f"GRP#{ALICE['uuid']}", "sk": "2025-01-01T00:00:00.000000+00:00",
                   "message_group_uuid": "g1", "message": "hello",
                   "user_uuid": BOB["uuid"], "user_display_name": "Bob B", "user_handle": "bob"}


def test_message_item_names_the_sender_and_round_trips():
    item = layout.message_item("g1", ALICE, "hi", "2025-01-01T00:00:00.000000+00:00")
    assert item["pk"] == "MSG#g1" and item["sk"] == "2025-01-01T00:00:00.000000+00:00"
    assert item["user_handle"] == "alice" and item["user_uuid"] == ALICE["uuid"]
    assert "message_group_uuid" not in item, "only group rows may appear in the GSI"
    uuid.UUID(item["message_uuid"])
    assert layout.message_group_uuid_of(item) == "g1"
    assert layout.message_item("g1", ALICE, "hi", "t", message_uuid="m1")["message_uuid"] == "m1"


def test_header_item_sorts_participants():
    header = layout.header_item("g1", [BOB["uuid"], ALICE["uuid"]], "t0")
    assert header == {"pk": "GROUP#g1", "sk": "GROUP", "participants": [ALICE["uuid"], BOB["uuid"]],
                      "created_at": "t0"}


def test_serialize_round_trip():
    item = {"pk": "a", "n": 3, "participants": ["x", "y"], "flag": True}
    assert dynamo.serialize(item)["pk"] == {"S": "a"}
    assert dynamo.deserialize(dynamo.serialize(item)) == item


def test_group_uuid_is_symmetric_and_deterministic():
    g = layout.group_uuid_for(ALICE["uuid"], BOB["uuid"])
    assert g == layout.group_uuid_for(BOB["uuid"], ALICE["uuid"])
    assert g == layout.group_uuid_for(uuid.UUID(ALICE["uuid"]), BOB["uuid"])
    assert uuid.UUID(g).version == 5
    assert g != layout.group_uuid_for(ALICE["uuid"], str(uuid.uuid4()))


def test_times_sort_as_strings():
    base = datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
    moments = [base + timedelta(microseconds=1), base, base - timedelta(days=400),
               base.replace(microsecond=0), base + timedelta(days=3),
               # other offsets are normalised to UTC
               datetime(2025, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=3))),
               datetime(2024, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))]
    strings = [times.iso(m) for m in moments]
    assert all(s.endswith("+00:00") and len(s) == len(strings[0]) for s in strings)
    assert sorted(strings) == [times.iso(m) for m in sorted(moments)]
    assert times.iso(base.replace(microsecond=0)) == "2024-12-31T23:59:59.000000+00:00"
    assert times.now_iso() > times.iso(base)


def test_seed_items_span_calendar_years_wherever_they_end():
    conversation = local_seed.read_conversation()
    assert len(conversation) >= 20
    users = {"andrewbrown": ALICE, "bayko": BOB}
    for end in (datetime(2025, 1, 1, 0, 30, tzinfo=timezone.utc),
                datetime(2025, 12, 31, 23, 0, tzinfo=timezone.utc)):
        items = local_seed.seed_items(users, conversation, end)
        sks = [i["sk"] for i in items if i["pk"].startswith("MSG#")]
        assert sks == sorted(sks) and len(set(sks)) == len(sks)
        assert len({sk[:4] for sk in sks}) > 1
        assert max(sks) <= times.iso(end)
