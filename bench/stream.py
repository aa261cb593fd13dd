"""The stream Lambda's DynamoDB calls for a burst of messages into one group.

The Lambda (aws/lambdas/cruddur-messaging-stream.py) is loaded from its file, given a Lambda-shaped
event of INSERT records with new images, as the table's stream would deliver them, and its
client's calls are counted with a botocore `before-call` hook."""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from domain import times
from bench.data import conversation
from lib import ddb
from lib.conversations import layout, table_setup
from lib.conversations.rows import group_rows
from lib.config import Settings
from devstack.stream_worker import lambda_environment, lambda_event, load_lambda


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def stream_record(item: dict[str, Any], sequence: int, event: str = "INSERT") -> dict[str, Any]:
    """A record as GetRecords returns it for the INSERT (or `event`) of `item` (NEW_IMAGE view)."""
    image = ddb.serialize(item)
    return {
        "eventID": f"bench-{sequence}",
        "eventName": event,
        "eventVersion": "1.1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime.now(timezone.utc),
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": 200,
            "StreamViewType": "NEW_IMAGE",
        },
    }


def measure(settings: Settings, a: dict[str, Any], b: dict[str, Any], count: int) -> dict[str, Any]:
    """On a table of its own (the Lambda's work does not depend on the table's size, moto's speed
    does): a conversation of `a` and `b`, then `count` more messages from `a`, handed to the Lambda
    as one batch; counts the DynamoDB calls it makes and checks that both group rows now point at
    the newest message."""
    own = settings.with_(ddb_table=f"bench-stream-{os.getpid()}")
    table = ddb.Ddb(own)
    table_setup.create_table(table)
    try:
        return _measure(own, table, a, b, count)
    finally:
        table.delete_table()


def _measure(settings: Settings, table: ddb.Ddb, a: dict[str, Any], b: dict[str, Any],
             count: int) -> dict[str, Any]:
    start = datetime.now(timezone.utc)
    existing = conversation(a, b, 2, start - timedelta(hours=1), timedelta(minutes=1))
    group = existing[1]["message_group_uuid"]
    items = [layout.message_item(group, a, f"burst message {i}",
                                 times.iso(start + timedelta(milliseconds=i))) for i in range(count)]
    # the messages exist, as they would when the stream delivers them
    table.batch_write(existing + items)
    stream_arn = (f"arn:aws:dynamodb:{settings.aws_region}:123456789012:table/"
                  f"{settings.ddb_table}/stream/bench")
    # the group's last message before the burst, already delivered to this container once
    earlier = lambda_event([stream_record(existing[-1], 0)], stream_arn, settings.aws_region)
    event = lambda_event([stream_record(item, n + 1) for n, item in enumerate(items)],
                         stream_arn, settings.aws_region)
    calls: list[str] = []
    with environment({**lambda_environment(settings), "LOG_LEVEL": "WARNING"}):
        # a new module, so the handler makes its client (as a fresh container does) from this env
        module = load_lambda()
        client = module._get_runtime()[0]
        client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
        # a container meets a group once (its participants, then remembered), then the burst
        module.lambda_handler(earlier, None)
        first_meeting = len(calls)
        calls.clear()
        answer = module.lambda_handler(event, None)

    rows = group_rows(table, group)
    newest = items[-1]["sk"]
    return {
        "messages": count,
        "groups": 1,
        "ddb_calls": len(calls),
        "ddb_calls_by_operation": {name: calls.count(name) for name in sorted(set(calls))},
        # the earlier batch, the first of this group for the container: the header read too
        "first_meeting_ddb_calls": first_meeting,
        "failures": len((answer or {}).get("batchItemFailures", [])),
        "rows_at_newest": sum(1 for r in rows if r["sk"] == newest),
    }
