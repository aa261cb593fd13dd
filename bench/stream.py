"""The stream Lambda's DynamoDB calls for a burst of messages into one group.

The Lambda (aws/lambdas/cruddur-messaging-stream.py) is loaded from its file, given a Lambda-shaped
event of INSERT records with new images, as the table's stream would deliver them, and its
client's calls are counted with a botocore `before-call` hook."""
from __future__ import annotations

import importlib.util
import os
import sys
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from bench.data import conversation
from lib import ddb as layout
from lib.cli import ddb as ddb_cli
from lib.config import ROOT, Settings

LAMBDA_FILE = ROOT / "aws" / "lambdas" / "cruddur-messaging-stream.py"


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


def load_lambda() -> Any:
    spec = importlib.util.spec_from_file_location("cruddur_messaging_stream_bench", LAMBDA_FILE)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(LAMBDA_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    return module


def stream_record(settings: Settings, item: dict[str, Any], sequence: int) -> dict[str, Any]:
    image = layout.serialize(item)
    return {
        "eventID": f"bench-{sequence}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": settings.aws_region,
        "dynamodb": {
            "ApproximateCreationDateTime": datetime.now(timezone.utc).timestamp(),
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": 200,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": (f"arn:aws:dynamodb:{settings.aws_region}:123456789012:table/"
                           f"{settings.ddb_table}/stream/bench"),
    }


def measure(settings: Settings, a: dict[str, Any], b: dict[str, Any], count: int) -> dict[str, Any]:
    """On a table of its own (the Lambda's work does not depend on the table's size, moto's speed
    does): a conversation of `a` and `b`, then `count` more messages from `a`, handed to the Lambda
    as one batch; counts the DynamoDB calls it makes and checks that both group rows now point at
    the newest message."""
    own = settings.with_(ddb_table=f"bench-stream-{os.getpid()}")
    ddb_cli.create_table(own)
    table = layout.Ddb(own)
    try:
        return _measure(own, table, a, b, count)
    finally:
        table.client.delete_table(TableName=own.ddb_table)


def _measure(settings: Settings, table: layout.Ddb, a: dict[str, Any], b: dict[str, Any],
             count: int) -> dict[str, Any]:
    start = datetime.now(timezone.utc)
    existing = conversation(a, b, 2, start - timedelta(hours=1), timedelta(minutes=1))
    group = existing[1]["message_group_uuid"]
    items = [layout.message_item(group, a, f"burst message {i}",
                                 layout.iso(start + timedelta(milliseconds=i))) for i in range(count)]
    # the messages exist, as they would when the stream delivers them
    table.batch_write(existing + items)
    event = {"Records": [stream_record(settings, item, n + 1) for n, item in enumerate(items)]}

    env = {
        "DDB_MESSAGE_TABLE": settings.ddb_table,
        "DDB_GSI_NAME": layout.GSI_NAME,
        "AWS_DEFAULT_REGION": settings.aws_region,
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url or "",
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        "LOG_LEVEL": "WARNING",
    }
    calls: list[str] = []

    def counted(client: Any) -> Any:
        client.meta.events.register("before-call.dynamodb",
                                    lambda model, **_: calls.append(model.name))
        return client

    with environment(env):
        module = load_lambda()
        if hasattr(module, "_get_runtime"):
            # The handler itself, with the client it made for its container.
            if hasattr(module, "reset"):
                module.reset()
            counted(module._get_runtime()[0])
            answer = module.lambda_handler(event, None)
        else:
            answer = module.handle_event(event, counted(module.make_client()), module.load_config())

    rows = table.group_rows(group)
    newest = items[-1]["sk"]
    return {
        "messages": count,
        "groups": 1,
        "ddb_calls": len(calls),
        "ddb_calls_by_operation": {name: calls.count(name) for name in sorted(set(calls))},
        "failures": len((answer or {}).get("batchItemFailures", [])),
        "rows_at_newest": sum(1 for r in rows if r["sk"] == newest),
    }
