"""DynamoDB capacity units per operation, end to end (the API's calls and the stream Lambda's),
computed from the items each call actually reads and writes with DynamoDB's published rules:

  write   1 WCU per started KB of the item written or deleted (the larger of the old and the new
          item for a put or update that replaces one), at least 1; twice that inside a transaction. A
          refused conditional write still costs its WCU. Every global secondary index that holds
          the item (it carries the index's key) costs one more write of the item's size per
          change: a new entry, or a deleted one.
  read    1 RCU per started 4 KB of everything a call reads (a Query sums its items, then rounds),
          at least 1 per call; half for an eventually consistent read (an index is always one).
          A GetItem's size is the whole item's, whatever its projection.
  size    per attribute, its name's UTF-8 bytes plus its value's: a string's UTF-8 bytes, a
          number's (significant digits + 1) / 2 + 1, 1 for a boolean or null, a map or list 3 plus
          1 per element plus its elements (and a map's names).

Each call is metered through botocore's events on the client the code under measure uses; the
old item a put or delete replaces is read beforehand through another client (not metered), so
the figures are the rules applied to the table's real items. Each call also asks DynamoDB for
ReturnConsumedCapacity=INDEXES: what the store reports is given beside the computed figure (moto
answers a fixed 1.0 per call, 0.5 per GetItem, whatever the size: see docs/performance.md).

Prices: on-demand, Standard table class, us-east-1, as AWS publishes them since 2024-11-01.
"""
from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Mapping

from bench.stream import stream_record
from lib import aws
from lib import ddb
from lib.conversations import layout, table_setup
from devstack.stream_worker import lambda_event, load_lambda
from services.bootstrap import Parts
from services.create_message import CreateMessage
from services.blocks import require_unblocked
from services.delete_message import DeleteMessage
from services.edit_message import EditMessage
from services.message_groups import MessageGroups
from services.messages import Messages
from services.read_markers import MarkRead, UnreadSummary

WRITE_PRICE_PER_MILLION = 0.625   # USD per million write request units
READ_PRICE_PER_MILLION = 0.125    # USD per million read request units
PRICE_NOTE = ("on-demand, Standard table class, us-east-1: $0.625 per million write request units, "
              "$0.125 per million read request units")
INDEX_KEY = ("message_group_uuid", "sk")  # the GSI message-group-sk-index


def value_size(value: Mapping[str, Any]) -> int:
    [(kind, body)] = value.items()
    if kind == "S":
        return len(body.encode("utf-8"))
    if kind == "N":
        digits = Decimal(body).normalize().as_tuple().digits
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(body)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in body)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in body.items())
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in body)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """An item's size in bytes by DynamoDB's rules (wire format: {"name": {"S": "..."}})."""
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in (item or {}).items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def indexed(item: Mapping[str, Any] | None) -> bool:
    return bool(item) and all(k in item for k in INDEX_KEY)  # type: ignore[operator]


def write_cost(new: Mapping[str, Any] | None, old: Mapping[str, Any] | None, done: bool,
               transactional: bool = False) -> tuple[float, float]:
    """(table WCU, index WCU) of one put (`new` given) or delete (`new` None) of an item whose
    key held `old`; `done` False for a refused condition."""
    table = write_units(max(item_size(new), item_size(old))) * (2 if transactional else 1)
    if not done:
        return table, 0
    index = 0
    if indexed(old) and (new is None or any(old.get(k) != new.get(k) for k in INDEX_KEY)):  # type: ignore[union-attr]
        index += write_units(item_size(old))  # its entry leaves the index
    if indexed(new):
        index += write_units(item_size(new))  # a new or changed entry
    return table, index


@dataclass
class Usage:
    """What a run of calls consumed."""
    wcu: float = 0.0          # table writes
    index_wcu: float = 0.0    # global secondary index writes
    rcu: float = 0.0
    reported: float = 0.0     # the store's own ConsumedCapacity, summed
    calls: Counter = field(default_factory=Counter)

    def charge(self, table: float, index: float) -> None:
        """Add one write's (table WCU, index WCU), as `write_cost` gives them."""
        self.wcu += table
        self.index_wcu += index

    @property
    def write_total(self) -> float:
        return self.wcu + self.index_wcu

    def add(self, other: "Usage") -> "Usage":
        return Usage(self.wcu + other.wcu, self.index_wcu + other.index_wcu, self.rcu + other.rcu,
                     self.reported + other.reported, self.calls + other.calls)

    def per(self, n: int) -> "Usage":
        """This usage as the mean of `n` operations."""
        return Usage(self.wcu / n, self.index_wcu / n, self.rcu / n, self.reported / n,
                     Counter({k: v / n for k, v in self.calls.items()}))

    def as_dict(self) -> dict[str, Any]:
        return {"wcu": self.wcu, "index_wcu": self.index_wcu, "write_total": self.write_total,
                "rcu": self.rcu, "store_reported": self.reported, "calls": dict(sorted(self.calls.items()))}


def dollars_per_million(usage: Usage) -> float:
    """On-demand price of a million of these operations."""
    return round(usage.write_total * WRITE_PRICE_PER_MILLION + usage.rcu * READ_PRICE_PER_MILLION, 4)


class Meter:
    """Meters every DynamoDB call of `client` (a boto3 client) into `usage`; `peek` is another
    client of the same table, used to read the items a write replaces."""

    def __init__(self, client: Any, peek: Any):
        self.peek = peek
        self.usage = Usage()
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.*", self._before)
        events.register("after-call.dynamodb.*", self._after)

    def take(self) -> Usage:
        """What was consumed since the last take."""
        usage, self.usage = self.usage, Usage()
        return usage

    def _old(self, table: str, key_of: Mapping[str, Any]) -> dict[str, Any] | None:
        key = {k: key_of[k] for k in ("pk", "sk")}
        return self.peek.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        name = model.name
        if name not in ("PutItem", "DeleteItem", "UpdateItem", "GetItem", "Query", "TransactWriteItems"):
            return
        params["ReturnConsumedCapacity"] = "INDEXES"
        olds: list[dict[str, Any] | None] = []
        if name == "PutItem":
            olds = [self._old(params["TableName"], params["Item"])]
        elif name in ("DeleteItem", "UpdateItem", "GetItem"):
            olds = [self._old(params["TableName"], params["Key"])]
        elif name == "TransactWriteItems":
            for operation in params["TransactItems"]:
                [(kind, body)] = operation.items()
                olds.append(self._old(body["TableName"], body.get("Item") or body["Key"]))
        context["meter"] = (name, dict(params), olds)

    def _after(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any],
               **_: Any) -> None:
        if "meter" not in context:
            return
        name, params, olds = context.pop("meter")
        error = parsed.get("Error", {}).get("Code")
        usage = self.usage
        usage.calls[name] += 1
        consumed = parsed.get("ConsumedCapacity")
        for entry in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            usage.reported += float(entry.get("CapacityUnits", 0))
        if error and error not in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            return  # refused before any work (throttled, invalid): no capacity
        if name == "PutItem":
            usage.charge(*write_cost(params["Item"], olds[0], done=not error))
        elif name == "UpdateItem":  # the item as it is after, read back
            new = self._old(params["TableName"], params["Key"]) if not error else olds[0]
            usage.charge(*write_cost(new, olds[0], done=not error))
        elif name == "DeleteItem":
            usage.charge(*write_cost(None, olds[0], done=not error and olds[0] is not None))
        elif name == "TransactWriteItems":
            for operation, old in zip(params["TransactItems"], olds):
                [(kind, body)] = operation.items()
                new = body.get("Item") if kind == "Put" else None
                usage.charge(*write_cost(new, old, done=not error, transactional=True))
        elif name == "GetItem":
            usage.rcu += read_units(item_size(olds[0]), bool(params.get("ConsistentRead")))
        elif name == "Query":
            items = parsed.get("Items", [])
            if "FilterExpression" in params or "ProjectionExpression" in params:
                items = self._read_by(params)
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            usage.rcu += read_units(sum(item_size(i) for i in items), consistent)

    def _read_by(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The whole items a filtered or projected Query read (it pays for them all): the same
        page again, without filter and projection, through the peek client."""
        names = params.get("ExpressionAttributeNames")
        again = {k: v for k, v in params.items()
                 if k not in ("FilterExpression", "ProjectionExpression", "ReturnConsumedCapacity",
                              "ExpressionAttributeNames", "ExpressionAttributeValues")}
        condition = params["KeyConditionExpression"]
        values = {k: v for k, v in params["ExpressionAttributeValues"].items() if k in condition}
        again["ExpressionAttributeValues"] = values
        if names:
            again["ExpressionAttributeNames"] = {k: v for k, v in names.items() if k in condition}
        return self.peek.query(**again).get("Items", [])


def transactional(usage: Usage) -> float:
    """The write units of `usage`'s writes made as one transaction instead (the table's units
    double, the index's do not): what the design before issue 14 paid."""
    return 2 * usage.wcu + usage.index_wcu


def measure(settings: Any, users: list[dict[str, Any]], repeats: int = 5) -> dict[str, Any]:
    """Capacity per operation, end to end, on a table of its own: the services called in this
    process (as the API's routes call them) through a metered client, and for every message the
    stream Lambda given that one record (one message per batch, the normal case at low traffic),
    through another. `users` (at least 23) are PostgreSQL users {uuid, display_name, handle}."""
    own = settings.with_(ddb_table=f"bench-capacity-{os.getpid()}")
    table = ddb.Ddb(own)
    table_setup.create_table(table)
    parts = Parts.from_settings(own)
    try:
        peek = aws.client(own, "dynamodb")
        api = Meter(parts.conversations.table.client, peek)
        stream = load_lambda()
        stream.log.setLevel(logging.WARNING)  # its line per batch is not a figure
        stream_client = aws.client(own, "dynamodb")
        lam = Meter(stream_client, peek)
        config = stream.Config(table=own.ddb_table)
        arn = f"arn:aws:dynamodb:{own.aws_region}:123456789012:table/{own.ddb_table}/stream/capacity"
        sequence = iter(range(1, 1_000_000))
        parts.conversations.layout_current()  # read once per few minutes: not part of any operation

        def send(caller: dict[str, Any], body: dict[str, Any], key: str | None = None) -> tuple[Usage, Usage]:
            api.take()
            reply = CreateMessage.run(parts.conversations, parts.users, parts.blocks, caller, body, key)
            group = reply.get("message_group_uuid") or body["message_group_uuid"]
            item = table.get({"pk": layout.message_pk(group), "sk": reply["created_at"]})
            api_usage = api.take()
            lam.take()
            answer = stream.handle_event(lambda_event([stream_record(item, next(sequence))], arn,
                                                      own.aws_region), stream_client, config)
            if answer["batchItemFailures"]:
                raise RuntimeError(f"the stream Lambda failed a record: {answer}")
            return api_usage, lam.take()

        def mean(usages: list[Usage]) -> Usage:
            total = Usage()
            for usage in usages:
                total = total.add(usage)
            return total.per(len(usages))

        me, partners = users[0], users[1:]
        firsts = [send(me, {"message": f"first message {i}", "handle": p["handle"]})
                  for i, p in enumerate(partners)]
        group = layout.group_uuid_for(me["uuid"], partners[0]["uuid"])
        into = [send(me if i % 2 else partners[0], {"message": f"message {i}", "message_group_uuid": group})
                for i in range(max(repeats, 21))]
        keyed = [send(me, {"message": f"keyed {i}", "message_group_uuid": group}, f"capacity-{i}")
                 for i in range(repeats)]
        by_handle = [send(me, {"message": f"by handle {i}", "handle": partners[0]["handle"]})
                     for i in range(repeats)]
        api.take()
        for _ in range(repeats):
            Messages.run(parts.conversations, parts.names, parts.cursors, me, group, 20)
        page_a = api.take()
        for _ in range(repeats):
            MessageGroups.run(parts.conversations, parts.names, parts.cursors, me, 20)
        page_b = api.take()
        reads = []
        for i in range(repeats):  # the partner has unread messages again each time
            send(me, {"message": f"to be read {i}", "message_group_uuid": group})
            api.take()
            MarkRead.run(parts.conversations, partners[0], group, None)
            reads.append(api.take())
        api.take()
        for _ in range(repeats):
            UnreadSummary.run(parts.conversations, me)
        summary = api.take()
        def change(change_it: Callable[[dict[str, Any]], Any]) -> tuple[Usage, Usage]:
            """The API's and the stream Lambda's usage of `change_it` applied to the conversation's
            last message (its MODIFY record given to the Lambda alone)."""
            sent = Messages.run(parts.conversations, parts.names, parts.cursors, me, group, 1)[0][-1]
            api.take()
            change_it(sent)
            api_usage = api.take()
            item = table.get({"pk": layout.message_pk(group), "sk": sent["created_at"]})
            lam.take()
            answer = stream.handle_event(lambda_event([stream_record(item, next(sequence), "MODIFY")], arn,
                                                      own.aws_region), stream_client, config)
            if answer["batchItemFailures"]:
                raise RuntimeError(f"the stream Lambda failed a change: {answer}")
            return api_usage, lam.take()

        edits = []
        for i in range(repeats):  # the conversation's last message, corrected by its sender
            send(me, {"message": f"to be edited {i}", "message_group_uuid": group})
            edits.append(change(lambda sent: EditMessage.run(parts.conversations, me, group, sent["uuid"],
                                                             {"message": f"edited {i}"})))
        deletions = []
        for i in range(repeats):  # the last message, unread by the other, sent with a key: every step of it
            send(partners[0], {"message": f"before the deleted {i}", "message_group_uuid": group})
            send(me, {"message": f"to be deleted {i}", "message_group_uuid": group}, f"deletion-{i}")
            deletions.append(change(lambda sent: DeleteMessage.run(parts.conversations, me, group, sent["uuid"])))
        require_unblocked(parts.blocks, me["uuid"], partners[0]["uuid"])  # the process's cache, filled
        api.take()
        for _ in range(repeats):  # what a send adds to check blocks: the cache, kept current by NOTIFY
            require_unblocked(parts.blocks, me["uuid"], partners[0]["uuid"])
        block_check = api.take()

        def end_to_end(name: str, runs: list[tuple[Usage, Usage]], api_tx: bool,
                       stream_tx: bool) -> dict[str, Any]:
            """The mean of `runs`, API and stream; "before" prices the writes the API (`api_tx`)
            or the stream (`stream_tx`) made in one transaction before issue 14 as such."""
            api_usage, lambda_usage = mean([a for a, _ in runs]), mean([b for _, b in runs])
            total = api_usage.add(lambda_usage)
            before = ((transactional(api_usage) if api_tx else api_usage.write_total)
                      + (transactional(lambda_usage) if stream_tx else lambda_usage.write_total))
            return {"operation": name, "runs": len(runs), "api": api_usage.as_dict(),
                    "stream": lambda_usage.as_dict(), **total.as_dict(),
                    "dollars_per_million": dollars_per_million(total),
                    "write_total_before": before}

        operations = [
            end_to_end("C: first message to a user", firsts, True, False),
            end_to_end("D: message into a conversation", into, False, True),
            end_to_end("D: with an Idempotency-Key", keyed, True, True),
            end_to_end("C: message to a user, conversation exists", by_handle, False, True),
            end_to_end("edit of a conversation's last message", edits, False, False),
            end_to_end("deletion of a last message, unread, keyed", deletions, False, False),
        ]
        marked = mean(reads)
        operations.append({"operation": "marking a conversation read", "runs": repeats,
                           "api": marked.as_dict(), **marked.as_dict(),
                           "dollars_per_million": dollars_per_million(marked)})
        for name, usage in (("A: a page of 20 messages", page_a), ("B: a page of 20 conversations", page_b),
                            ("unread summary (23 conversations)", summary),
                            ("block check added to a send", block_check)):
            per = usage.per(repeats)
            operations.append({"operation": name, "runs": repeats, "api": per.as_dict(), **per.as_dict(),
                               "dollars_per_million": dollars_per_million(per)})
        return {"price": PRICE_NOTE, "operations": operations}
    finally:
        parts.db.close()
        table.delete_table()
