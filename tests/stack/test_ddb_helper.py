"""lib/ddb.py (the key layout, the boto3 helper and its error translation) and the local seed
(devstack/seed.py), against moto."""
from __future__ import annotations

import math
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from domain import times
from lib import aws
from lib import ddb as dynamo
from lib.conversations import layout, table_setup
from lib.db import Db
from lib.ddb import Ddb, KeyTaken
from devstack import seed as local_seed
from tests import tables

ALICE = {"uuid": "11111111-1111-4111-8111-111111111111", "display_name": "Alice A", "handle": "alice"}
BOB = {"uuid": "22222222-2222-4222-8222-222222222222", "display_name": "Bob B", "handle": "bob"}


def describe(settings, name=None):
    return Ddb(settings).client.describe_table(TableName=name or settings.ddb_table)["Table"]


def scan_all(settings) -> list[dict]:
    """Every item of the table but its layout mark (which a new table starts with)."""
    client = Ddb(settings).client
    items = []
    for page in client.get_paginator("scan").paginate(TableName=settings.ddb_table):
        items += [dynamo.deserialize(i) for i in page["Items"]]
    return [i for i in items if i["pk"] != layout.LAYOUT_KEY["pk"]]


# -- table shape -----------------------------------------------------------------------------------

def test_table_keys_gsi_and_stream(settings):
    table = describe(settings)
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    [gsi] = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "message-group-sk-index"
    assert {k["AttributeName"]: k["KeyType"] for k in gsi["KeySchema"]} == {
        "message_group_uuid": "HASH", "sk": "RANGE"}
    assert gsi["Projection"]["ProjectionType"] == "ALL"
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert table["LatestStreamArn"]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"pk": "S", "sk": "S", "message_group_uuid": "S"}


def test_table_is_on_demand_by_default(settings):
    assert describe(settings)["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_table_is_provisioned_with_the_flag(settings):
    provisioned = settings.with_(ddb_table=f"test-prov-{uuid.uuid4().hex[:8]}")
    assert tables.create_table(Ddb(provisioned), provisioned=True, read_capacity=3, write_capacity=4) is True
    try:
        table = describe(provisioned)
        assert table["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
        assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
        assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 4
        assert table["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]["WriteCapacityUnits"] == 4
        # a second schema-load leaves the existing table alone
        assert tables.create_table(Ddb(provisioned)) is False
    finally:
        assert Ddb(provisioned).delete_table() is True
    assert Ddb(provisioned).delete_table() is False


def ttl_of(settings) -> tuple[str, str | None]:
    described = Ddb(settings).client.describe_time_to_live(TableName=settings.ddb_table)
    return (described["TimeToLiveDescription"]["TimeToLiveStatus"],
            described["TimeToLiveDescription"].get("AttributeName"))


def test_schema_load_turns_ttl_on_for_a_table_made_without_it(settings):
    """A table the bootcamp's schema-load made has no TTL: ours turns it on (idempotency records
    must expire), and running it again is harmless although DynamoDB refuses to enable it twice."""
    old = settings.with_(ddb_table=f"test-nottl-{uuid.uuid4().hex[:8]}")
    table = Ddb(old)
    table.client.create_table(**layout.table_definition(old.ddb_table))
    try:
        assert ttl_of(old) == ("DISABLED", None)
        assert tables.create_table(table) is False
        assert ttl_of(old) == ("ENABLED", "expires_at")
        assert tables.create_table(table) is False and table_setup.ensure_ttl(table) == "ENABLED"
    finally:
        table.delete_table()


def test_ttl_on_another_attribute_is_left_alone_with_a_warning(settings, caplog):
    other = settings.with_(ddb_table=f"test-ttl-{uuid.uuid4().hex[:8]}")
    table = Ddb(other)
    table.client.create_table(**layout.table_definition(other.ddb_table))
    table.client.update_time_to_live(TableName=other.ddb_table, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "purge_at"})
    try:
        assert table_setup.ensure_ttl(table) == "ENABLED"
        assert ttl_of(other) == ("ENABLED", "purge_at")
        assert "not expires_at" in caplog.text
    finally:
        table.delete_table()




# -- keys and items --------------------------------------------------------------------------------















# -- reads: pages ----------------------------------------------------------------------------------

def collect(fetch, limit):
    seen, after, pages = [], None, 0
    while True:
        page = fetch(limit, after)
        pages += 1
        assert len(page.items) <= limit
        seen += page.items
        if page.next_sk is None:
            return seen, pages
        assert page.next_sk == page.items[-1]["sk"]
        after = page.next_sk
        assert pages < 20


def test_messages_page_paginates_newest_first(fresh_table):
    ddb = Ddb(fresh_table)
    g = layout.group_uuid_for(ALICE["uuid"], BOB["uuid"])
    start = datetime(2024, 12, 30, tzinfo=timezone.utc)
    items = [layout.message_item(g, ALICE if i % 2 else BOB, f"m{i}", times.iso(start + timedelta(hours=i)))
             for i in range(7)]
    # another group's messages must not leak in
    ddb.batch_write(items + [layout.message_item("other", ALICE, "x", times.iso(start))])
    seen, pages = collect(lambda limit, after: tables.messages_page(ddb, g, limit, after), 3)
    assert [m["message"] for m in seen] == [f"m{i}" for i in reversed(range(7))]
    assert pages == 3
    first = tables.messages_page(ddb, g, 3)
    assert first.next_sk == first.items[-1]["sk"]
    assert tables.messages_page(ddb, g, 10).next_sk is None


def test_groups_page_paginates_most_recent_first(fresh_table):
    ddb = Ddb(fresh_table)
    start = datetime(2025, 6, 1, tzinfo=timezone.utc)
    others = [{"uuid": str(uuid.uuid4()), "display_name": f"U{i}", "handle": f"u{i}"} for i in range(5)]
    rows = [layout.group_row(ALICE["uuid"], o, layout.group_uuid_for(ALICE["uuid"], o["uuid"]),
                             f"last {i}", times.iso(start + timedelta(days=i)))
            for i, o in enumerate(others)]
    ddb.batch_write(rows)
    seen, _ = collect(lambda limit, after: tables.groups_page(ddb, ALICE["uuid"], limit, after), 2)
    assert [r["user_handle"] for r in seen] == ["u4", "u3", "u2", "u1", "u0"]
    assert tables.groups_page(ddb, BOB["uuid"], 2).items == []


def test_group_rows_through_the_gsi(fresh_table):
    ddb = Ddb(fresh_table)
    g = layout.group_uuid_for(ALICE["uuid"], BOB["uuid"])
    sk = times.now_iso()
    ddb.batch_write([layout.group_row(ALICE["uuid"], BOB, g, "hi", sk),
                     layout.group_row(BOB["uuid"], ALICE, g, "hi", sk),
                     layout.message_item(g, ALICE, "hi", sk),
                     layout.header_item(g, [ALICE["uuid"], BOB["uuid"]], sk)])
    rows = tables.group_rows(ddb, g)
    assert sorted(r["pk"] for r in rows) == sorted([layout.group_pk(ALICE["uuid"]), layout.group_pk(BOB["uuid"])])


def test_get_and_put_unless_the_key_exists(fresh_table):
    ddb = Ddb(fresh_table)
    header = layout.header_item("g1", [ALICE["uuid"], BOB["uuid"]], "t0")
    assert ddb.get(layout.header_key("g1")) is None
    ddb.put_new(header)
    assert ddb.get(layout.header_key("g1")) == header
    with pytest.raises(KeyTaken) as taken:
        ddb.put_new({**header, "created_at": "t1"})
    assert taken.value.positions == {0}
    assert ddb.get(layout.header_key("g1")) == header


def test_a_cancelled_transaction_is_key_taken_naming_the_refused_positions(fresh_table):
    """The app writes no transaction any more, but translate() still reads one's cancellation
    (an operator's script, or a future write, may make one)."""
    ddb = Ddb(fresh_table)
    a, b, c = ({"pk": "X#1", "sk": s} for s in ("a", "b", "c"))
    ddb.put(b)

    def put(item):
        return {"Put": {"TableName": ddb.table, "Item": dynamo.serialize(item),
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
    with pytest.raises(ClientError) as cancelled:
        ddb.client.transact_write_items(TransactItems=[put(c), put(b)])
    taken = dynamo.translate(cancelled.value)
    assert isinstance(taken, KeyTaken)
    assert (taken.positions, taken.held) == ({1}, {1: b})
    assert ddb.get({"pk": "X#1", "sk": "c"}) is None, "nothing of a refused transaction is written"


# -- writes: batches -------------------------------------------------------------------------------

class CountingClient:
    """A real client whose batch_write_item calls are counted; the first call writes only part
    of what it is given and answers the rest as UnprocessedItems when `hold_back` is set."""

    def __init__(self, client, hold_back: int = 0):
        self._client = client
        self.hold_back = hold_back
        self.batch_calls: list[int] = []
        self.other_writes = 0

    def put_item(self, **kwargs):
        self.other_writes += 1
        return self._client.put_item(**kwargs)

    def transact_write_items(self, **kwargs):
        self.other_writes += 1
        return self._client.transact_write_items(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems):
        [(table, requests)] = RequestItems.items()
        self.batch_calls.append(len(requests))
        assert len(requests) <= 25
        if len(self.batch_calls) == 1 and self.hold_back:
            keep, held = requests[:-self.hold_back], requests[-self.hold_back:]
            self._client.batch_write_item(RequestItems={table: keep})
            return {"UnprocessedItems": {table: held}}
        return self._client.batch_write_item(RequestItems=RequestItems)


def test_batch_write_retries_unprocessed_items(fresh_table):
    client = CountingClient(aws.client(fresh_table, "dynamodb"), hold_back=5)
    ddb = Ddb(fresh_table, client=client)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    items = [layout.message_item("g1", ALICE, f"m{i}", times.iso(start + timedelta(seconds=i)))
             for i in range(30)]
    progress: list[int] = []
    calls = ddb.batch_write(items, on_progress=progress.append)
    # 25 (5 come back unprocessed), the 5 again, then the last 5
    assert client.batch_calls == [25, 5, 5]
    assert calls == 3
    assert sum(progress) == 30
    stored = scan_all(fresh_table)
    assert sorted(i["message"] for i in stored) == sorted(i["message"] for i in items)


# -- seed ------------------------------------------------------------------------------------------

def seeded_users(settings):
    db = Db(settings)
    try:
        return {h: local_seed.user_by_handle(db, h) for h in ("andrewbrown", "bayko")}
    finally:
        db.close()


def test_seed_counts_spread_and_batches(fresh_table, monkeypatch):
    made: list[CountingClient] = []
    real_client = aws.client

    def counting_client(settings, service):
        made.append(CountingClient(real_client(settings, service)))
        return made[-1]

    monkeypatch.setattr(aws, "client", counting_client)
    db = Db(fresh_table)
    try:
        items, calls = local_seed.seed(Ddb(fresh_table), db)
        again = local_seed.seed(Ddb(fresh_table), db)
    finally:
        db.close()
    monkeypatch.undo()

    stored = scan_all(fresh_table)
    messages = [i for i in stored if i["pk"].startswith("MSG#")]
    groups = [i for i in stored if i["pk"].startswith("GRP#")]
    headers = [i for i in stored if i["pk"].startswith("GROUP#")]
    assert len(messages) >= 20
    assert len(groups) == 2 and len(headers) == 1
    assert items == len(stored) == len(messages) + 3
    assert again == (0, 0), "a second seed leaves the table alone"

    batch_calls = [n for c in made for n in c.batch_calls]
    # written in full batches, and nothing else but the header, last
    assert len(batch_calls) == math.ceil((items - 1) / 25) and sum(batch_calls) == items - 1
    assert sum(c.other_writes for c in made) == 1 and calls == len(batch_calls) + 1

    users = seeded_users(fresh_table)
    g = layout.group_uuid_for(users["andrewbrown"]["uuid"], users["bayko"]["uuid"])
    assert {layout.message_group_uuid_of(m) for m in messages} == {g}
    assert headers[0]["participants"] == sorted([users["andrewbrown"]["uuid"], users["bayko"]["uuid"]])
    assert {m["user_handle"] for m in messages} == {"andrewbrown", "bayko"}
    years = {m["sk"][:4] for m in messages}
    assert len(years) > 1, "the conversation spans more than one calendar year"
    latest = max(messages, key=lambda m: m["sk"])
    assert all(r["sk"] == latest["sk"] and r["message"] == latest["message"] for r in groups)
    assert {r["pk"]: r["user_handle"] for r in groups} == {
        layout.group_pk(users["andrewbrown"]["uuid"]): "bayko",
        layout.group_pk(users["bayko"]["uuid"]): "andrewbrown"}


def test_seeding_again_writes_nothing_twice_and_finishes_an_interrupted_seed(fresh_table):
    """--force writes no message or row a second time; a seed cut short (here: everything but
    some messages and the header) is completed by the next run, into the same times."""
    ddb = Ddb(fresh_table)
    db = Db(fresh_table)
    try:
        local_seed.seed(ddb, db)
        complete = sorted((i["pk"], i["sk"], i.get("message_uuid", "")) for i in scan_all(fresh_table))
        assert local_seed.seed(ddb, db, force=True)[0] == 0
        assert sorted((i["pk"], i["sk"], i.get("message_uuid", "")) for i in scan_all(fresh_table)) == complete

        # cut short: the header and the last five messages never written
        group = next(i["message_group_uuid"] for i in scan_all(fresh_table) if i["pk"].startswith("GRP#"))
        client = ddb.client
        client.delete_item(TableName=ddb.table, Key=dynamo.serialize(layout.header_key(group)))
        for message in tables.messages_page(ddb, group, 5).items:
            client.delete_item(TableName=ddb.table, Key=dynamo.serialize({"pk": message["pk"], "sk": message["sk"]}))
        written, _ = local_seed.seed(ddb, db)
        assert written == 6  # the five messages and the header
        assert sorted((i["pk"], i["sk"], i.get("message_uuid", "")) for i in scan_all(fresh_table)) == complete
    finally:
        db.close()




def test_expiry_is_read_as_the_put_condition_reads_it(settings):
    """A record past its expires_at counts as absent to put_new of a record (which expires too)
    and to layout.expired alike; one without expires_at never expires."""
    table = Ddb(settings)
    key = {"pk": f"IDEM#{uuid.uuid4()}", "sk": "k"}
    past, future = int(time.time()) - 60, int(time.time()) + 60
    record = {**key, "v": "new", "expires_at": int(time.time()) + layout.IDEMPOTENCY_TTL_SECONDS}
    for held, free in (({}, False), ({"expires_at": future}, False), ({"expires_at": past}, True)):
        table.put({**key, **held, "v": "old"})
        assert layout.expired({**key, **held}) is free
        if free:
            table.put_new(record, expires=layout.TTL_ATTRIBUTE)
            assert table.get(key)["v"] == "new"
        else:
            with pytest.raises(KeyTaken):
                table.put_new(record, expires=layout.TTL_ATTRIBUTE)


def test_only_a_record_that_expires_asks_the_store_to_compare_expiry(settings):
    """Messages, rows and headers never expire, so their conditional put asks the store for
    attribute_not_exists(pk) alone: a comparison and its value would only cost the store time
    on every message (on the local store, a PutItem took ~0.2 ms longer with them). An
    idempotency record asks for both."""
    table = Ddb(settings)
    asked: list[dict] = []
    table.client.meta.events.register(
        "provide-client-params.dynamodb.PutItem",
        lambda params, **_: asked.append({k: v for k, v in params.items() if k != "Item"}))
    ana, bo = ({**ALICE, "uuid": str(uuid.uuid4())}, {**BOB, "uuid": str(uuid.uuid4())})  # a new pair
    group = layout.group_uuid_for(ana["uuid"], bo["uuid"])
    never = [layout.header_item(group, [ana["uuid"], bo["uuid"]], times.now_iso(),
                                layout.profiles_of(ana, bo), str(uuid.uuid4())),
             layout.message_item(group, ana, "hi", times.now_iso()),
             layout.group_row(ana["uuid"], bo, group, "hi", times.now_iso())]
    record = {**layout.idempotency_key(ana["uuid"], "k"), "fingerprint": "f",
              "expires_at": int(time.time()) + 60}
    for item in never:
        table.put_new(item)
        with pytest.raises(KeyTaken):
            table.put_new(item)
    for _ in range(2):
        try:
            table.put_new(record, expires=layout.TTL_ATTRIBUTE)
        except KeyTaken:
            pass
    plain = {"TableName": table.table, "ConditionExpression": "attribute_not_exists(pk)",
             "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    assert asked[:6] == [plain] * 6
    assert [a["ConditionExpression"] for a in asked[6:]] == ["attribute_not_exists(pk) OR #n0 < :v0"] * 2
    assert all(a["ExpressionAttributeNames"] == {"#n0": "expires_at"} for a in asked[6:])


def test_the_lean_clients_reads_equal_botocores_own_parse(fresh_table):
    """The API's client takes Query and GetItem answers as the wire's JSON (lib/aws.py); for every
    kind of item of this table that is exactly what botocore's model walk gives, keys, pages and
    consumed capacity included."""
    careful, lean = Ddb(fresh_table), Ddb(fresh_table, aws.client(fresh_table, "dynamodb", lean=True))
    group = layout.group_uuid_for(ALICE["uuid"], BOB["uuid"])
    items = [
        layout.header_item(group, [ALICE["uuid"], BOB["uuid"]], "t0", layout.profiles_of(ALICE, BOB), "m0"),
        layout.group_row(ALICE["uuid"], BOB, group, "héllo ✓", "2030-01-01T00:00:00.000000+00:00"),
        *(layout.message_item(group, ALICE, f"m{i}", f"2030-01-01T00:00:0{i}.000000+00:00") for i in range(5)),
        {**layout.idempotency_key(ALICE["uuid"], "k"), "fingerprint": "f", "named": True,
         "expires_at": 1_900_000_000, "created_at": "t"},
    ]
    careful.batch_write(items)

    def strip(answer: dict) -> dict:
        return {k: v for k, v in answer.items() if k != "ResponseMetadata"}

    for item in items:
        key = dynamo.serialize({"pk": item["pk"], "sk": item["sk"]})
        args = {"TableName": careful.table, "Key": key, "ReturnConsumedCapacity": "TOTAL"}
        assert strip(lean.client.get_item(**args)) == strip(careful.client.get_item(**args))
    query = {"TableName": careful.table, "KeyConditionExpression": "pk = :pk", "Limit": 2,
             "ExpressionAttributeValues": {":pk": {"S": layout.message_pk(group)}}}
    assert strip(lean.client.query(**query)) == strip(careful.client.query(**query))
    assert "LastEvaluatedKey" in lean.client.query(**query)
    assert tables.messages_page(lean, group, 3) == tables.messages_page(careful, group, 3)
    # errors are parsed as usual
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        lean.client.get_item(TableName="no-such-table", Key=key)
    # the one difference, which this table never has: a binary value stays base64 text
    careful.client.put_item(TableName=careful.table, Item={"pk": {"S": "BIN"}, "sk": {"S": "1"}, "b": {"B": b"\x00"}})
    binary = {"TableName": careful.table, "Key": {"pk": {"S": "BIN"}, "sk": {"S": "1"}}}
    assert careful.client.get_item(**binary)["Item"]["b"] == {"B": b"\x00"}
    assert lean.client.get_item(**binary)["Item"]["b"] == {"B": "AA=="}
