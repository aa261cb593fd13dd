"""The local DynamoDB (moto, corrected by lib/moto_server.py) keeps DynamoDB's guarantees: a
cancelled transaction changes nothing, and concurrent writes are never lost."""
from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from lib import ddb as layout

PERSON = {"uuid": "u-1", "display_name": "Someone", "handle": "someone"}


def test_cancelled_transaction_restores_what_it_touched(fresh_table):
    table = layout.Ddb(fresh_table)
    kept = layout.message_item("g", PERSON, "kept", "2025-01-01T00:00:00.000000+00:00")
    table.put(kept)
    streams = layout.aws.client(fresh_table, "dynamodbstreams")
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
        table.transact([
            table.put_op(new),  # applied by moto before the failing condition below...
            table.put_op(changed),
            table.put_op(layout.header_item("g", ["a", "b"], new["sk"]), "attribute_exists(pk)"),
        ])
    assert error.value.response["Error"]["Code"] == "TransactionCanceledException"
    # ...and undone: the table and its stream are as they were.
    assert table.get({"pk": new["pk"], "sk": new["sk"]}) is None
    assert table.get({"pk": kept["pk"], "sk": kept["sk"]})["message"] == "kept"
    assert records() == before


def test_concurrent_writes_survive_cancelled_transactions(fresh_table):
    table = layout.Ddb(fresh_table)
    header = layout.header_item("g", ["a", "b"], "2025-01-01T00:00:00.000000+00:00")
    table.put(header)
    written: list[dict] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        own = layout.Ddb(fresh_table)
        for i in range(25):
            item = layout.message_item("g", PERSON, f"{n}-{i}", layout.now_iso())
            own.put(item)
            with lock:
                written.append(item)

    def canceller() -> None:
        own = layout.Ddb(fresh_table)
        for _ in range(25):
            with pytest.raises(ClientError):
                own.transact([own.put_op(header, "attribute_not_exists(pk)")])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=canceller) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stored = table.messages_page("g", 1000).items
    assert sorted(i["message"] for i in stored) == sorted(i["message"] for i in written)
