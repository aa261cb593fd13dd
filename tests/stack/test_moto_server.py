"""The local DynamoDB (moto, corrected by devstack/moto_corrections/) keeps DynamoDB's guarantees: a
cancelled transaction changes nothing, and concurrent writes are never lost."""
from __future__ import annotations

import json
from decimal import Decimal
import threading
import uuid

import pytest
from botocore.exceptions import ClientError

from domain import times
from lib import aws
from lib import ddb as dynamo
from lib.conversations import layout
from tests import tables

PERSON = {"uuid": "u-1", "display_name": "Someone", "handle": "someone"}


def put(table: dynamo.Ddb, item: dict, condition: str | None = None) -> dict:
    """A raw Put of TransactWriteItems (these tests drive moto itself, not the adapter)."""
    op = {"TableName": table.table, "Item": dynamo.serialize(item)}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def test_cancelled_transaction_restores_what_it_touched(fresh_table):
    table = dynamo.Ddb(fresh_table)
    kept = layout.message_item("g", PERSON, "kept", "2025-01-01T00:00:00.000000+00:00")
    table.put(kept)
    streams = aws.client(fresh_table, "dynamodbstreams")
    arn = table.client.describe_table(TableName=table.table)["Table"]["LatestStreamArn"]

    def records() -> int:
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        return len(streams.get_records(ShardIterator=it)["Records"])

    before = records()
    new = layout.message_item("g", PERSON, "new", "2025-01-02T00:00:00.000000+00:00")
    changed = {**kept, "message": "changed"}
    with pytest.raises(ClientError) as error:
        table.client.transact_write_items(TransactItems=[
            put(table, new),  # applied by moto before the failing condition below...
            put(table, changed),
            put(table, layout.header_item("g", ["a", "b"], new["sk"]), "attribute_exists(pk)"),
        ])
    assert error.value.response["Error"]["Code"] == "TransactionCanceledException"
    # ...and undone: the table and its stream are as they were.
    assert table.get({"pk": new["pk"], "sk": new["sk"]}) is None
    assert table.get({"pk": kept["pk"], "sk": kept["sk"]})["message"] == "kept"
    assert records() == before


def test_concurrent_writes_survive_cancelled_transactions(fresh_table):
    table = dynamo.Ddb(fresh_table)
    header = layout.header_item("g", ["a", "b"], "2025-01-01T00:00:00.000000+00:00")
    table.put(header)
    written: list[dict] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        own = dynamo.Ddb(fresh_table)
        for i in range(25):
            item = layout.message_item("g", PERSON, f"{n}-{i}", times.now_iso())
            own.put(item)
            with lock:
                written.append(item)

    def canceller() -> None:
        own = dynamo.Ddb(fresh_table)
        for _ in range(25):
            with pytest.raises(ClientError):
                own.client.transact_write_items(TransactItems=[put(own, header, "attribute_not_exists(pk)")])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=canceller) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stored = tables.messages_page(table, "g", 1000).items
    assert sorted(i["message"] for i in stored) == sorted(i["message"] for i in written)


def test_query_pages_match_moto_and_dynamodb_order(fresh_table):
    """The narrowed Query gives what a full one gives: every page, both directions, no gaps."""
    table = dynamo.Ddb(fresh_table)
    # written out of order, with a neighbouring partition that must not leak in
    times = [f"2025-01-01T00:00:{s:02d}.{us:06d}+00:00" for s in range(0, 60, 7) for us in (5, 1, 3)]
    table.batch_write([layout.message_item("g", PERSON, t, t) for t in reversed(times)]
                      + [layout.message_item("other", PERSON, "x", t) for t in times[:5]])
    for newest_first, expected in ((True, sorted(times, reverse=True)), (False, sorted(times))):
        for limit in (1, 4, 100):
            seen, after = [], None
            while True:
                page = table.query(layout.message_pk("g"), limit=limit, newest_first=newest_first, after_sk=after)
                assert len(page.items) <= limit
                seen += [i["sk"] for i in page.items]
                if page.next_sk is None:
                    break
                after = page.next_sk
            assert seen == expected
    # a key condition on the sort key takes moto's own path, with the same answer
    response = table.client.query(
        TableName=table.table, KeyConditionExpression="pk = :pk AND sk > :t",
        ExpressionAttributeValues={":pk": {"S": layout.message_pk("g")}, ":t": {"S": times[-1]}})
    assert sorted(i["sk"]["S"] for i in response["Items"]) == [t for t in sorted(times) if t > times[-1]]


def test_index_query_finds_exactly_the_rows_of_its_group(fresh_table):
    table = dynamo.Ddb(fresh_table)
    people = [{"uuid": f"u-{n}", "display_name": f"P{n}", "handle": f"p{n}"} for n in range(3)]
    rows = [layout.group_row(people[a]["uuid"], people[b], layout.group_uuid_for(people[a]["uuid"], people[b]["uuid"]),
                             "hi", f"2025-01-0{a + 1}T00:00:0{b}.000000+00:00")
            for a in range(3) for b in range(3) if a != b]
    table.batch_write(rows)
    group = layout.group_uuid_for("u-0", "u-1")
    assert sorted(r["pk"] for r in tables.group_rows(table, group)) == ["GRP#u-0", "GRP#u-1"]


def test_index_query_follows_every_kind_of_change(fresh_table):
    """An index Query looks only at the items holding its hash key, found through buckets kept
    from the table's changes: after puts, overwrites that move an item to another group, updates
    of the key attribute, deletes, batch writes and a cancelled transaction, every group's index
    Query answers what a Scan of the table says it holds."""
    table = dynamo.Ddb(fresh_table)
    client, index = table.client, layout.GSI_NAME
    groups = ["g-a", "g-b", "g-c"]

    def item(group: str, n: int) -> dict:  # a message carrying the index's key
        return {**layout.message_item(group, PERSON, f"m{n}", f"2025-01-01T00:00:{n:02d}.000000+00:00"),
                "message_group_uuid": group}

    def by_query(group: str) -> list[tuple[str, str]]:
        found = client.query(TableName=table.table, IndexName=index,
                             KeyConditionExpression="message_group_uuid = :g",
                             ExpressionAttributeValues={":g": {"S": group}})["Items"]
        return sorted((i["pk"]["S"], i["sk"]["S"]) for i in found)

    def by_scan(group: str) -> list[tuple[str, str]]:
        return sorted((i["pk"], i["sk"]) for i in map(dynamo.deserialize, client.scan(
            TableName=table.table)["Items"]) if i.get("message_group_uuid") == group)

    def agree() -> None:
        for group in groups:
            assert by_query(group) == by_scan(group), group

    for group in groups:  # the first Query of the index builds its buckets
        assert by_query(group) == []
    table.batch_write([item(g, n) for g in groups for n in range(4)])
    agree()
    moved = item("g-a", 0)
    table.put({**moved, "message_group_uuid": "g-b"})  # overwritten into another group
    client.update_item(TableName=table.table, Key=dynamo.serialize({"pk": item("g-a", 1)["pk"],
                                                                     "sk": item("g-a", 1)["sk"]}),
                       UpdateExpression="SET message_group_uuid = :g",
                       ExpressionAttributeValues={":g": {"S": "g-c"}})
    client.update_item(TableName=table.table, Key=dynamo.serialize({"pk": item("g-b", 2)["pk"],
                                                                     "sk": item("g-b", 2)["sk"]}),
                       UpdateExpression="REMOVE message_group_uuid")
    client.delete_item(TableName=table.table, Key=dynamo.serialize({"pk": item("g-c", 3)["pk"],
                                                                     "sk": item("g-c", 3)["sk"]}))
    agree()
    assert [len(by_query(g)) for g in groups] == [2, 4, 4]
    with pytest.raises(ClientError):
        client.transact_write_items(TransactItems=[
            put(table, {**item("g-a", 2), "message_group_uuid": "g-b"}),  # applied, then undone
            put(table, item("g-a", 9)),
            put(table, item("g-a", 3), "attribute_not_exists(pk)"),  # exists: cancels
        ])
    agree()
    assert [len(by_query(g)) for g in groups] == [2, 4, 4]




def test_a_full_collection_hands_its_survivors_out_of_the_collectors_view():
    """The local moto holds millions of objects at bench sizes; a full collection over all of them
    stopped every request for half a second. After one, the survivors are frozen, so the next
    full collection looks only at newer objects; a frozen object is still freed by its last
    reference going."""
    import gc
    import weakref

    from devstack.moto_corrections import dynamodb as moto_server

    class Item(dict):
        pass

    gc.collect()
    gc.unfreeze()
    gc.disable()  # only the collections below, none that allocations would start
    try:
        moto_server.freeze_after_full_collections()
        moto_server.freeze_after_full_collections()  # once is enough: no second hook
        assert gc.callbacks.count(moto_server.freeze_survivors) == 1
        kept = [Item(n=n) for n in range(1000)]
        gc.collect(1)  # a younger generation's collection freezes nothing
        assert gc.get_freeze_count() == 0
        gc.collect(2)
        assert gc.get_freeze_count() >= len(kept)
        gone = weakref.ref(kept[0])
        del kept[0]
        assert gone() is None  # freed at once, frozen or not
    finally:
        while moto_server.freeze_survivors in gc.callbacks:
            gc.callbacks.remove(moto_server.freeze_survivors)
        gc.unfreeze()
        gc.enable()


def test_a_deleted_table_gives_what_is_frozen_back_to_the_collector(monkeypatch):
    """A table and its stream refer to each other, so once frozen a deleted table would never be
    freed: deleting one unfreezes, and the next full collection frees it."""
    import gc
    import weakref

    from devstack.moto_corrections import dynamodb as moto_server

    class Table:
        pass

    class Shard:
        pass

    table, shard = Table(), Shard()
    table.stream_shard, shard.table = shard, table
    tables = {"t": table}
    monkeypatch.setattr(moto_server, "_moto_delete_table", lambda self, name: tables.pop(name))
    gone = weakref.ref(table)
    del table, shard
    gc.collect()
    gc.freeze()
    try:
        moto_server.delete_table(None, "t")  # type: ignore[arg-type]
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()


# -- the harsh switch (devstack/harsh.py) ---------------------------------------------------------



def test_the_switch_over_http_changes_the_running_server(settings, harsh):
    import requests

    from devstack.harsh import CONTROL_PATH, set_remote

    assert set_remote(settings.aws_endpoint_url, throttle=0.5).throttle == 0.5
    refused = requests.post(settings.aws_endpoint_url + CONTROL_PATH, json={"throttle": 7}, timeout=5)
    assert refused.status_code == 400
    assert requests.get(settings.aws_endpoint_url + CONTROL_PATH, timeout=5).json()["throttle"] == 0.5


def test_throttling_refuses_before_anything_is_written(fresh_table, harsh):
    from botocore.config import Config

    import boto3

    harsh(throttle=1.0, lost_responses=0, gsi_lag_ms=0, duplicate_records=0)
    # a client without retries, to see the first answer
    plain = boto3.session.Session().client(
        "dynamodb", endpoint_url=fresh_table.aws_endpoint_url, region_name=fresh_table.aws_region,
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    item = layout.message_item("g", PERSON, "throttled", "2025-01-01T00:00:00.000000+00:00")
    with pytest.raises(ClientError) as refused:
        plain.put_item(TableName=fresh_table.ddb_table, Item=dynamo.serialize(item))
    assert refused.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    harsh(throttle=0)
    assert dynamo.Ddb(fresh_table).get({"pk": item["pk"], "sk": item["sk"]}) is None


def test_a_lagging_index_shows_items_as_they_were(fresh_table, harsh):
    harsh(gsi_lag_ms=0, throttle=0, lost_responses=0, duplicate_records=0)
    table = dynamo.Ddb(fresh_table)
    other = {"uuid": "u-2", "display_name": "U", "handle": "u"}
    row = layout.group_row("u-1", other, "g-lag", "hi", "2025-01-01T00:00:00.000000+00:00")
    table.put(row)
    assert tables.group_rows(table, "g-lag") == [row]

    harsh(gsi_lag_ms=60_000)
    young = layout.group_row("u-1", other, "g-young", "hi", "2025-01-01T00:00:01.000000+00:00")
    table.put(young)
    assert tables.group_rows(table, "g-young") == [], "too young for the index"
    assert table.get({"pk": young["pk"], "sk": young["sk"]}) == young, "the table has it at once"
    # moved (put later, then deleted) while the index lags: it still shows the old one
    moved = {**row, "sk": "2025-01-02T00:00:00.000000+00:00"}
    table.put_new(moved)
    table.client.delete_item(TableName=table.table, Key=dynamo.serialize({"pk": row["pk"], "sk": row["sk"]}))
    assert tables.group_rows(table, "g-lag") == [row]
    harsh(gsi_lag_ms=0)
    assert tables.group_rows(table, "g-lag") == [moved]
    assert tables.group_rows(table, "g-young") == [young]


def test_duplicated_stream_records_keep_their_sequence_numbers(fresh_table, harsh):
    harsh(duplicate_records=1.0, throttle=0, lost_responses=0, gsi_lag_ms=0)
    table = dynamo.Ddb(fresh_table)
    table.put(layout.message_item("g", PERSON, "twice", "2025-01-01T00:00:00.000000+00:00"))
    streams = aws.client(fresh_table, "dynamodbstreams")
    arn = table.client.describe_table(TableName=table.table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seqs = [r["dynamodb"]["SequenceNumber"] for r in streams.get_records(ShardIterator=iterator)["Records"]]
    assert len(seqs) == 2 * len(set(seqs)) and seqs[0] == seqs[1]


def test_get_records_answers_every_kind_of_value_and_a_full_page_at_once(fresh_table):
    """Correction 10: GetRecords is written as JSON directly (moto's serializer took a second
    for a page of 1,000). Every attribute type and the record's fields read back as DynamoDB
    Streams gives them, and a page holds as many records as were asked for."""
    from datetime import datetime, timedelta, timezone

    table = dynamo.Ddb(fresh_table)
    item = {"pk": "X#1", "sk": "a", "s": "text", "n": 5, "f": Decimal("1.5"),
            "b": b"\x00\xff", "yes": True, "none": None, "l": ["a", 1], "m": {"k": {"deep": [b"x"]}},
            "ss": {"a", "b"}, "ns": {1, 2}}
    before = datetime.now(timezone.utc)
    table.put(item)
    table.batch_write([{"pk": "X#2", "sk": str(i)} for i in range(1200)])
    streams = aws.client(fresh_table, "dynamodbstreams")
    arn = table.describe()["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = streams.get_records(ShardIterator=iterator, Limit=1000)
    records = [r for r in page["Records"] if r["dynamodb"]["Keys"]["pk"] == {"S": "X#1"}]
    [record] = records
    assert dynamo.deserialize(record["dynamodb"]["NewImage"]) == item
    assert (record["eventName"], record["eventSource"], record["dynamodb"]["StreamViewType"]) == (
        "INSERT", "aws:dynamodb", "NEW_IMAGE")
    created = record["dynamodb"]["ApproximateCreationDateTime"]
    assert before - timedelta(seconds=1) <= created <= datetime.now(timezone.utc)
    assert len(page["Records"]) == 1000
    rest = streams.get_records(ShardIterator=page["NextShardIterator"], Limit=1000)["Records"]
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in page["Records"] + rest]
    assert sequence == sorted(set(sequence)) and len(sequence) >= 1201


def test_the_local_server_takes_its_harshness_from_the_environment(monkeypatch, tmp_path):
    """As ./bin/dev starts it: LOCAL_HARSH=1 in the environment makes the server harsh; the
    tests' own server is started kind whatever the environment says."""
    import requests

    from devstack import LocalMoto, free_port, harsh

    monkeypatch.setenv("LOCAL_HARSH", "1")
    for given, expected in ((None, harsh.DEFAULTS), (harsh.Harshness(), vars(harsh.Harshness()))):
        moto = LocalMoto(free_port(), tmp_path / "moto.log", harshness=given).start()
        try:
            assert requests.get(moto.url + harsh.CONTROL_PATH, timeout=5).json() == expected
        finally:
            moto.stop()


def test_the_local_server_keeps_its_data_across_a_restart(tmp_path):
    """Written, then stopped at once (before any periodic save): started again on the same
    file, the table, its item, the pool's user with its sub and an avatar in S3 are all there."""
    from lib.config import Settings
    from devstack import LocalMoto, assets, free_port

    state = tmp_path / "moto-state.pickle"
    port = free_port()
    moto = LocalMoto(port, tmp_path / "moto.log", state_file=state).start()
    try:
        settings = Settings(aws_endpoint_url=moto.url)
        table = dynamo.Ddb(settings)
        tables.create_table(table)
        kept = layout.message_item("g", PERSON, "kept", "2025-01-01T00:00:00.000000+00:00")
        table.put(kept)
        cognito = aws.client(settings, "cognito-idp")
        pool = cognito.create_user_pool(PoolName="kept-pool")["UserPool"]["Id"]
        user = cognito.admin_create_user(UserPoolId=pool, Username="kept@example.test")["User"]
        sub = {a["Name"]: a["Value"] for a in user["Attributes"]}["sub"]
        bucket, _ = assets.set_up(settings)
        aws.client(settings, "s3").put_object(Bucket=bucket, Key="avatars/kept.jpg", Body=b"an avatar")
    finally:
        moto.stop()
    again = LocalMoto(port, tmp_path / "moto.log", state_file=state).start()
    try:
        assert dynamo.Ddb(settings).get({"pk": kept["pk"], "sk": kept["sk"]}) == kept
        found = aws.client(settings, "cognito-idp").admin_get_user(UserPoolId=pool, Username="kept@example.test")
        assert {a["Name"]: a["Value"] for a in found["UserAttributes"]}["sub"] == sub
        assets.set_up(settings)  # as ./bin/dev does at every start: it completes, never empties
        kept_avatar = aws.client(settings, "s3").get_object(Bucket=bucket, Key="avatars/kept.jpg")
        assert kept_avatar["Body"].read() == b"an avatar"
    finally:
        again.stop()


def test_a_saved_state_that_cannot_be_read_is_set_aside_and_said(tmp_path):
    """A file cut short (or of another moto): moto starts empty, keeps the file aside, and its
    starter knows, for ./bin/dev's ready line; the next start, on a state file of its own, does not
    say it again."""
    from lib.config import Settings
    from devstack import LocalMoto, free_port

    state = tmp_path / "moto-state.pickle"
    state.write_bytes(b"\x80\x05 cut short")
    moto = LocalMoto(free_port(), tmp_path / "moto.log", state_file=state).start()
    try:
        assert moto.state_set_aside == tmp_path / "moto-state.pickle.unreadable"
        assert moto.state_set_aside.read_bytes() == b"\x80\x05 cut short"
        assert aws.client(Settings(aws_endpoint_url=moto.url), "dynamodb").list_tables()["TableNames"] == []
    finally:
        moto.stop()
    again = LocalMoto(moto.port, tmp_path / "moto.log", state_file=state).start()
    try:
        assert again.state_set_aside is None
    finally:
        again.stop()


def test_a_client_keeps_one_connection_for_its_calls(fresh_table, caplog):
    """HTTP/1.1 keep-alive, as DynamoDB's endpoint: a client's calls reuse its connection instead
    of opening one each (what werkzeug's HTTP/1.0 default made every call pay)."""
    import logging

    table = dynamo.Ddb(fresh_table)
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        for i in range(10):
            table.put_new({"pk": "KEEP#1", "sk": str(i)})
            table.get({"pk": "KEEP#1", "sk": str(i)})
        table.query("KEEP#1", limit=20, newest_first=True)
    # urllib3 says "Resetting dropped connection" when it reopens one the server closed
    opened = [r for r in caplog.records
              if "Starting new HTTP connection" in r.getMessage() or "dropped" in r.getMessage()]
    assert len(opened) == 1, [r.getMessage() for r in opened]
    assert len(table.query("KEEP#1", limit=20, newest_first=True).items) == 10


def test_requests_sent_back_to_back_on_one_connection_are_each_answered(fresh_table):
    """The server reads a request's body whole before answering it, so the next request, already
    in the socket, is neither swallowed nor garbled (werkzeug's drain would read it)."""
    import json
    import socket

    host, port = fresh_table.aws_endpoint_url.split("//")[1].rsplit(":", 1)
    body = json.dumps({"TableName": fresh_table.ddb_table, "Key": {"pk": {"S": "none"}, "sk": {"S": "x"}}})
    request = ("POST / HTTP/1.1\r\nHost: {h}\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n"
               "Content-Type: application/x-amz-json-1.0\r\nAuthorization: AWS4-HMAC-SHA256 "
               "Credential=test/20260101/{r}/dynamodb/aws4_request, SignedHeaders=host, Signature=0\r\n"
               "Content-Length: {n}\r\n\r\n{b}").format(h=host, r=fresh_table.aws_region,
                                                           n=len(body), b=body).encode()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request * 3)
        received = b""
        while received.count(b"HTTP/1.1 200 OK") < 3:
            chunk = conn.recv(65536)
            assert chunk, received  # the server closed before the third answer
            received += chunk
    assert b"Connection: close" not in received


def _function_with_mapping(settings, stream_arn: str) -> tuple[object, str, str]:
    """A Lambda function (a handler that does nothing) and an event source mapping from
    `stream_arn` to it: the Lambda client, the mapping's UUID and the function's name."""
    import io
    import zipfile

    from lib import aws

    iam, lam = aws.client(settings, "iam"), aws.client(settings, "lambda")
    name = f"mapped-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=role["Role"]["Arn"],
                        Handler="handler.handler", Code={"ZipFile": code.getvalue()})
    mapping = lam.create_event_source_mapping(EventSourceArn=stream_arn, FunctionName=name,
                                              StartingPosition="TRIM_HORIZON", Enabled=True)
    return lam, mapping["UUID"], name


@pytest.mark.parametrize("removed", ["nothing", "the mapping", "the mapping, then the function"])
def test_a_tables_writes_never_depend_on_a_lambda_mapped_to_its_stream(fresh_table, removed):
    """moto invoked a function mapped to a table's stream inside each write (in Docker, which the
    local stack has not), and kept a deleted mapping on the table: with a mapping, live or
    deleted, every write answered 500 yet stored its item, and a delivered batch was taken out of
    the stream. bin/aws/deploy against the local stack maps the table's stream; bin/aws/destroy
    deletes the mapping and keeps the table. In AWS a table's writes never depend on its stream's
    readers, and each reader sees every record."""
    from lib import aws

    ddb, streams = aws.client(fresh_table, "dynamodb"), aws.client(fresh_table, "dynamodbstreams")
    stream_arn = ddb.describe_table(TableName=fresh_table.ddb_table)["Table"]["LatestStreamArn"]
    lam, mapping, function = _function_with_mapping(fresh_table, stream_arn)
    if removed != "nothing":
        lam.delete_event_source_mapping(UUID=mapping)
    if removed.endswith("function"):
        lam.delete_function(FunctionName=function)
    item = dynamo.serialize({"pk": "MSG#after", "sk": "2026-01-01T00:00:00.000000+00:00"})
    ddb.put_item(TableName=fresh_table.ddb_table, Item=item)
    assert ddb.get_item(TableName=fresh_table.ddb_table, Key=item)["Item"] == item
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    # the write's record is still there for the stream's reader (after the table's layout mark)
    assert [r["dynamodb"]["Keys"] for r in records][-1:] == [{"pk": item["pk"], "sk": item["sk"]}]


def test_a_state_saved_before_the_local_stack_moved_to_devstack_is_still_read(monkeypatch):
    """A developer's .local/moto-state.pickle from before the move names the harsh index's change
    log by its old module (lib.local.harsh); it is read, not set aside with their data."""
    import pickle
    import sys

    from devstack import harsh, moto_state

    log = harsh.ChangeLog()
    monkeypatch.setattr(harsh.ChangeLog, "__module__", "lib.local.harsh")
    monkeypatch.setitem(sys.modules, "lib.local.harsh", harsh)
    old = pickle.dumps({"log": log})
    monkeypatch.undo()
    assert b"lib.local.harsh" in old and "lib.local.harsh" not in sys.modules
    assert isinstance(moto_state.loads(old)["log"], harsh.ChangeLog)


def test_only_the_frontends_origin_may_call_the_local_cognito_from_a_browser(settings):
    """Issue 33, item 13 (correction 11): moto's server answered CORS for any origin, so any page
    a developer visited could call the local Cognito (AdminCreateUser) or read
    /moto-api/data.json, which holds passwords. Now the frontend's origin gets Cognito's answers
    with CORS, and another origin gets no CORS header anywhere: its browser hands it nothing."""
    import requests

    frontend, elsewhere = settings.frontend_url, "https://evil.example"
    target = {"Content-Type": "application/x-amz-json-1.1",
              "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"}
    body = '{"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "nope", "AuthParameters": {}}'
    for origin, allowed in ((frontend, True), (elsewhere, False)):
        preflight = requests.options(settings.aws_endpoint_url + "/", timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-amz-target,x-amz-user-agent"})
        assert (preflight.headers.get("Access-Control-Allow-Origin") == origin) is allowed, origin
        call = requests.post(settings.aws_endpoint_url + "/", data=body, timeout=10,
                             headers={**target, "Origin": origin})
        assert (call.headers.get("Access-Control-Allow-Origin") == origin) is allowed, origin
        assert "Access-Control-Allow-Origin" not in requests.get(
            settings.aws_endpoint_url + "/moto-api/data.json", headers={"Origin": origin}, timeout=10).headers
        admin = requests.post(settings.aws_endpoint_url + "/", data="{}", timeout=10, headers={
            "Content-Type": "application/x-amz-json-1.1", "Origin": origin,
            "X-Amz-Target": "AWSCognitoIdentityProviderService.AdminCreateUser"})
        if not allowed:
            assert "Access-Control-Allow-Origin" not in admin.headers



@pytest.mark.parametrize("old_module", ["devstack.moto_server", "__main__"])
def test_a_state_saved_before_the_corrections_were_split_by_service_is_still_read(monkeypatch, old_module):
    """The index's buckets live on a table's stream shard, so a saved state names their class;
    one saved before the split names it by devstack/moto_server.py (as `__main__` when ./bin/dev
    ran it with `python -m`), and is read all the same."""
    import pickle
    import sys
    import types

    from devstack import moto_state
    from devstack.moto_corrections import dynamodb

    class _IndexBuckets:  # the class as the old module named it
        pass

    _IndexBuckets.__module__, _IndexBuckets.__qualname__ = old_module, "_IndexBuckets"
    old_home = types.ModuleType(old_module)
    setattr(old_home, "_IndexBuckets", _IndexBuckets)
    monkeypatch.setitem(sys.modules, old_module, old_home)
    stale = _IndexBuckets()
    stale.__dict__.update(name="sk", keys_by_value={}, value_by_key={})
    old = pickle.dumps({"buckets": stale})
    monkeypatch.undo()
    assert old_module.encode() in old and b"_IndexBuckets" in old
    read = moto_state.loads(old)["buckets"]
    assert isinstance(read, dynamodb.IndexBuckets) and read.name == "sk"


