"""The stream Lambda (aws/lambdas/cruddur-messaging-stream.py) over moto, each test on a fresh
table. Events are built from the table's real stream records, in Lambda's shape."""
from __future__ import annotations

import re

import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from domain import times
from lib import aws
from lib import ddb as dynamo
from lib.conversations import layout
from lib.ddb import Ddb
from devstack.stream_worker import lambda_event, load_lambda
from tests import tables
from tests.policies import PolicyRecorder, allowed

START = datetime(2030, 1, 1, tzinfo=timezone.utc)


def person(handle: str) -> dict[str, str]:
    return {"uuid": str(uuid.uuid4()), "display_name": handle.title(), "handle": handle}


def at(seconds: float) -> str:
    return times.iso(START + timedelta(seconds=seconds))


@pytest.fixture(scope="module")
def stream_lambda():
    return load_lambda()


class Calls:
    """DynamoDB calls made through a client, per operation and per message group."""

    def __init__(self, client: Any):
        self.log: list[tuple[str, str | None]] = []
        client.meta.events.register("before-parameter-build.dynamodb.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.log.append((model.name, self.group_of(model.name, params)))

    @staticmethod
    def group_of(operation: str, params: dict[str, Any]) -> str | None:
        names, values = params.get("ExpressionAttributeNames", {}), params.get("ExpressionAttributeValues", {})
        for expression in ("KeyConditionExpression", "FilterExpression", "ConditionExpression"):
            # the group's rows (through the index or a partition), a move's conditions
            for name, value in re.findall(r"(#n\d+) = (:v\d+)", params.get(expression, "")):
                if names.get(name) == "message_group_uuid":
                    return values[value]["S"]
        if operation == "Query":  # the count of its messages: pk = MSG#<group>
            return values[":v0"]["S"][len(layout.MESSAGE_PREFIX):]
        if operation == "PutItem":  # a row, or a header the Lambda gives a week-5 group
            item = params["Item"]
            return item["message_group_uuid"]["S"] if "message_group_uuid" in item else item["pk"]["S"][len(layout.HEADER_PREFIX):]
        if operation == "GetItem":  # the group's header
            return params["Key"]["pk"]["S"][len(layout.HEADER_PREFIX):]
        return None

    def per_group(self) -> dict[str | None, int]:
        counts: dict[str | None, int] = {}
        for _, group in self.log:
            counts[group] = counts.get(group, 0) + 1
        return counts

    def clear(self) -> None:
        self.log.clear()


class Clients:
    """Clients of the suite's moto, made once per module (making one takes a noticeable time):
    `lambda_` is the one given to the Lambda, and the only one whose calls are counted."""

    def __init__(self, settings):
        self.lambda_ = aws.client(settings, "dynamodb")
        self.calls = Calls(self.lambda_)
        self.table = aws.client(settings, "dynamodb")
        self.streams = aws.client(settings, "dynamodbstreams")


@pytest.fixture(scope="module")
def clients(settings) -> Clients:
    return Clients(settings)


class Env:
    """A fresh table with conversations in it, the Lambda's client and config for it, and the
    table's stream as Lambda events."""

    def __init__(self, settings, stream_lambda, clients: Clients):
        self.settings = settings
        self.mod = stream_lambda
        self.table = Ddb(settings, clients.table)
        self.client = clients.lambda_
        self.calls = clients.calls
        self.calls.clear()
        self.config = stream_lambda.Config(table=settings.ddb_table)
        self.streams = clients.streams
        self.stream_arn = self.table.client.describe_table(
            TableName=settings.ddb_table)["Table"]["LatestStreamArn"]
        self.seen = 0  # stream records already handed out by `new_records`

    def conversation(self, a: dict, b: dict, first: str, sk: str) -> str:
        """A group as the API creates it: header, both rows and the first message."""
        group = layout.group_uuid_for(a["uuid"], b["uuid"])
        self.table.put(layout.header_item(group, [a["uuid"], b["uuid"]], sk, layout.profiles_of(a, b)))
        for row in layout.message_rows(a, b, group, first, sk):
            self.table.put(row)
        self.table.put(layout.message_item(group, a, first, sk))
        return group

    def send(self, group: str, sender: dict, text: str, sk: str) -> dict:
        item = layout.message_item(group, sender, text, sk)
        self.table.put(item)
        return item

    def send_many(self, plan: list[tuple[str, dict]], start: int = 1) -> dict[str, dict]:
        """Messages (group, sender) one second apart, in batch writes; the last one per group."""
        items = [layout.message_item(g, sender, f"m{i}", at(start + i)) for i, (g, sender) in enumerate(plan)]
        self.table.batch_write(items)
        return {item["pk"][len(layout.MESSAGE_PREFIX):]: item for item in items}

    def new_records(self) -> list[dict[str, Any]]:
        """The stream records written since the last call, in Lambda's shape."""
        shard = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0]
        iterator = self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard["ShardId"],
                                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = self.streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        fresh, self.seen = records[self.seen:], len(records)
        return lambda_event(fresh, self.stream_arn, self.settings.aws_region)["Records"]

    def handle(self, records: list[dict[str, Any]], client: Any | None = None) -> dict:
        return self.mod.handle_event({"Records": records}, client or self.client, self.config)

    def rows(self, user: dict) -> list[dict]:
        return tables.groups_page(self.table, user["uuid"], 100).items

    def assert_last(self, group: str, users: list[dict], message: dict) -> None:
        """Each participant has exactly one row for the group, at `message`."""
        for user in users:
            mine = [r for r in self.rows(user) if r["message_group_uuid"] == group]
            assert len(mine) == 1, (user["handle"], mine)
            assert (mine[0]["sk"], mine[0]["message"]) == (message["sk"], message["message"]), user["handle"]


@pytest.fixture
def env(fresh_table, stream_lambda, clients) -> Env:
    return Env(fresh_table, stream_lambda, clients)


@pytest.fixture
def people() -> dict[str, dict]:
    return {h: person(h) for h in ("ana", "bo", "cy", "di")}


def message_seqs(records: list[dict]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in records
            if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["pk"]["S"].startswith("MSG#")]


# -- many messages ---------------------------------------------------------------------------
def test_many_messages_into_one_group_take_two_calls(env, people):
    ana, bo = people["ana"], people["bo"]
    group = env.conversation(ana, bo, "hi", at(0))
    last = env.send_many([(group, [ana, bo][i % 2]) for i in range(60)])[group]
    records = env.new_records()
    assert len(message_seqs(records)) == 61

    env.calls.clear()
    assert env.handle(records) == {"batchItemFailures": []}
    env.assert_last(group, [ana, bo], last)
    # the first time a container meets a group, it reads who the participants are (consistently);
    # then per participant a put of the new row and the delete of the old one
    moves = [("PutItem", group), ("DeleteItem", group)] * 2
    assert env.calls.log == [("GetItem", group), ("Query", group), *moves]

    later = env.send_many([(group, bo) for _ in range(30)], start=100)[group]
    env.calls.clear()
    assert env.handle(env.new_records()) == {"batchItemFailures": []}
    env.assert_last(group, [ana, bo], later)
    assert env.calls.log == [("Query", group), *moves]


def test_messages_into_several_groups_take_two_calls_per_group(env, people):
    ana, bo, cy, di = people.values()
    pairs = [(ana, bo), (ana, cy), (bo, cy), (cy, di)]
    # distinct first times: one user's rows of two groups cannot share a sort key
    groups = [env.conversation(a, b, "hello", at(-i)) for i, (a, b) in enumerate(pairs)]
    # interleaved across the groups
    last = env.send_many([(groups[i % 4], pairs[i % 4][i // 4 % 2]) for i in range(80)])
    records = env.new_records()

    env.calls.clear()
    assert env.handle(records) == {"batchItemFailures": []}
    for group, (a, b) in zip(groups, pairs):
        env.assert_last(group, [a, b], last[group])
    # ana, bo and cy are in several groups: each still sees each of their groups once, newest first
    assert [r["message_group_uuid"] for r in env.rows(ana)] == [groups[1], groups[0]]
    assert env.calls.per_group() == {g: 6 for g in groups}  # header, index, 2 puts, 2 deletes


# -- order, duplicates, replays ----------------------------------------------------------------
def test_out_of_order_and_duplicate_events_never_go_back(env, people):
    ana, bo = people["ana"], people["bo"]
    group = env.conversation(ana, bo, "hi", at(0))
    sent = [env.send(group, ana, f"m{i}", at(i + 1)) for i in range(5)]
    records = env.new_records()
    newest = records[-1]
    shuffled = records[:-1] + [newest, newest]
    random.Random(4).shuffle(shuffled)  # the newest comes somewhere in the middle, twice

    assert env.handle(shuffled) == {"batchItemFailures": []}
    env.assert_last(group, [ana, bo], sent[-1])

    # a replay of the whole batch, then of older messages only, then of the newest again: each
    # finds the rows current and writes nothing (records older than the rows make it count bo's
    # unread messages again from the table: counted before, or late?)
    counts = (unread_of(env, ana, group), unread_of(env, bo, group))
    assert counts == ((sent[-1]["sk"], 0), ("", 6))  # "hi", then five more from ana
    for replay in (records, records[3:7], [newest]):
        env.calls.clear()
        assert env.handle(replay) == {"batchItemFailures": []}
        env.assert_last(group, [ana, bo], sent[-1])
        assert {op for op, _ in env.calls.log} == {"Query"}
        assert (unread_of(env, ana, group), unread_of(env, bo, group)) == counts
    # the newest again: nothing to count; the index's rows, then each participant's rows from
    # the batch's first message on read from the table (a failed move may have left one there
    # that the index does not show yet), and nothing written
    assert env.calls.log == [("Query", group)] * 3


def test_an_older_message_arriving_in_a_later_batch_is_ignored(env, people):
    ana, bo = people["ana"], people["bo"]
    group = env.conversation(ana, bo, "hi", at(0))
    old = env.send(group, bo, "written first, delivered last", at(1))
    old_records = env.new_records()
    new = env.send(group, ana, "newer", at(2))
    assert env.handle(env.new_records()) == {"batchItemFailures": []}
    assert env.handle(old_records) == {"batchItemFailures": []}
    env.assert_last(group, [ana, bo], new)
    assert old["sk"] < new["sk"]


# -- events that do not count --------------------------------------------------------------
def test_remove_modify_and_other_items_are_skipped(env, people):
    ana, bo = people["ana"], people["bo"]
    group = env.conversation(ana, bo, "hi", at(0))
    first = env.send(group, ana, "kept", at(1))
    assert env.handle(env.new_records()) == {"batchItemFailures": []}
    moves = env.new_records()  # the Lambda's own writes are in the stream too: skipped as well
    assert {(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"][:4]) for r in moves} == {
        ("REMOVE", "GRP#"), ("INSERT", "GRP#")}

    later = layout.message_item(group, bo, "edited", at(5))
    env.table.put(later)                                      # INSERT (of a message)...
    env.send(group, bo, "edited again", at(5))                # ...MODIFY of the same message
    env.table.client.delete_item(TableName=env.settings.ddb_table,  # REMOVE
                                 Key=dynamo.serialize({"pk": later["pk"], "sk": later["sk"]}))
    env.table.put(layout.idempotency_key(ana["uuid"], "key-1") | {"response": "{}"})
    env.table.put({"pk": layout.message_pk(group), "sk": at(9), "message": "no message_uuid"})
    records = env.new_records()
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE", "INSERT", "INSERT"]

    others = moves + records[1:]  # all but the message's INSERT
    env.calls.clear()
    assert env.handle(others) == {"batchItemFailures": []}
    assert env.calls.log == []
    env.assert_last(group, [ana, bo], first)
    assert env.handle([]) == {"batchItemFailures": []}
    assert env.mod.handle_event({}, env.client, env.config) == {"batchItemFailures": []}


def test_a_message_of_no_conversation_is_not_an_error(env, people):
    """No header and no row anywhere (read from the table, not the lagging index): not a
    conversation, nothing to update, nothing to retry."""
    group = layout.group_uuid_for(people["ana"]["uuid"], people["bo"]["uuid"])
    env.send(group, people["ana"], "no rows for this group", at(1))
    assert env.handle(env.new_records()) == {"batchItemFailures": []}
    assert env.rows(people["ana"]) == []


def test_leftover_duplicate_rows_are_merged_into_one(env, people):
    ana, bo = people["ana"], people["bo"]
    group = env.conversation(ana, bo, "hi", at(0))
    env.table.put(layout.group_row(ana["uuid"], bo, group, "a stray second row", at(1)))
    env.new_records()
    new = env.send(group, bo, "new", at(2))
    assert env.handle(env.new_records()) == {"batchItemFailures": []}
    env.assert_last(group, [ana, bo], new)


def test_conversations_whose_last_messages_share_a_microsecond_keep_a_row_each(env, people):
    # bo's rows all live in one partition, keyed by the time of each conversation's last message:
    # three last messages at the same microsecond cannot share that key
    ana, bo, cy, di = people["ana"], people["bo"], people["cy"], people["di"]
    groups = [env.conversation(other, bo, "hello", at(-i)) for i, other in enumerate((ana, cy, di))]
    env.new_records()
    same = at(5)
    last = {g: env.send(g, other, f"to bo from {other['handle']}", same)
            for g, other in zip(groups, (ana, cy, di))}
    records = env.new_records()

    assert env.handle(records) == {"batchItemFailures": []}
    bo_rows = {r["message_group_uuid"]: r for r in env.rows(bo)}
    assert sorted(bo_rows) == sorted(groups)  # one row per conversation
    assert {g: r["message"] for g, r in bo_rows.items()} == {g: m["message"] for g, m in last.items()}
    # the first one applied keeps the exact time, the others follow a microsecond apart
    start = datetime.fromisoformat(same)
    assert sorted(r["sk"] for r in bo_rows.values()) == [
        times.iso(start + timedelta(microseconds=n)) for n in range(3)]
    for group, other in zip(groups, (ana, cy, di)):
        env.assert_last(group, [other], last[group])  # the other side is not shifted

    # a replay of the batch (Lambda retries) changes nothing
    assert env.handle(records) == {"batchItemFailures": []}
    assert {r["message_group_uuid"]: r for r in env.rows(bo)} == bo_rows


def test_a_key_collision_across_batches_is_applied_too(env, people):
    ana, bo, cy = people["ana"], people["bo"], people["cy"]
    g1, g2 = env.conversation(ana, bo, "hello", at(0)), env.conversation(cy, bo, "hello", at(-1))
    env.new_records()
    first = env.send(g1, ana, "first", at(5))
    assert env.handle(env.new_records()) == {"batchItemFailures": []}
    second = env.send(g2, cy, "second", at(5))
    assert env.handle(env.new_records()) == {"batchItemFailures": []}
    env.assert_last(g1, [ana, bo], first)
    env.assert_last(g2, [cy], second)
    mine = [r for r in env.rows(bo) if r["message_group_uuid"] == g2]
    assert [(r["sk"], r["message"]) for r in mine] == [
        (times.iso(datetime.fromisoformat(at(5)) + timedelta(microseconds=1)), "second")]
    # a newer message later moves the shifted row on as usual
    newest = env.send(g2, bo, "newest", at(6))
    assert env.handle(env.new_records()) == {"batchItemFailures": []}
    env.assert_last(g2, [cy, bo], newest)


# -- failures ----------------------------------------------------------------------------------
class FailingClient:
    """The real client, except that `operation` (PutItem or DeleteItem) fails for the given
    groups `times` times, as DynamoDB fails once botocore's retries are spent."""

    def __init__(self, client: Any, groups: set[str], times: int = 1, operation: str = "PutItem"):
        self.client, self.groups, self.left = client, groups, {g: times for g in groups}
        self.operation = operation

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def _maybe_fail(self, operation: str, params: dict[str, Any]) -> None:
        group = Calls.group_of(operation, params)
        if operation == self.operation and self.left.get(group, 0) > 0:
            self.left[group] -= 1
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}},
                              operation)

    def put_item(self, **params: Any) -> Any:
        self._maybe_fail("PutItem", params)
        return self.client.put_item(**params)

    def delete_item(self, **params: Any) -> Any:
        self._maybe_fail("DeleteItem", params)
        return self.client.delete_item(**params)


def test_a_failed_group_reports_its_earliest_record_and_the_retry_completes_it(env, people):
    ana, bo, cy, di = people.values()
    pairs = [(ana, bo), (bo, cy), (cy, di)]
    g1, g2, g3 = (env.conversation(a, b, "hello", at(-i)) for i, (a, b) in enumerate(pairs))
    env.new_records()
    plan = [(g1, ana), (g1, bo), (g2, bo), (g3, cy), (g2, cy), (g1, ana), (g3, di), (g2, bo)]
    last = {g: env.send(g, sender, f"m{i}", at(i + 1)) for i, (g, sender) in enumerate(plan)}
    records = env.new_records()

    answer = env.handle(records, FailingClient(env.client, {g2}))
    # g2's first record is the third of the batch: Lambda retries from there
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[2]["dynamodb"]["SequenceNumber"]}]}
    env.assert_last(g1, [ana, bo], last[g1])
    env.assert_last(g3, [cy, di], last[g3])
    env.assert_last(g2, [bo, cy], {"sk": at(-1), "message": "hello"})  # untouched

    # Lambda's retry: the batch from the reported record on
    assert env.handle(records[2:]) == {"batchItemFailures": []}
    for group, (a, b) in zip((g1, g2, g3), pairs):
        env.assert_last(group, [a, b], last[group])


def test_several_failed_groups_report_the_lowest_record(env, people):
    ana, bo, cy = people["ana"], people["bo"], people["cy"]
    g1 = env.conversation(ana, bo, "hello", at(0))
    g2 = env.conversation(bo, cy, "hello", at(-1))
    env.new_records()
    env.send(g2, bo, "g2 first", at(1))
    env.send(g1, ana, "g1 first", at(2))
    last = env.send(g2, cy, "g2 last", at(3))
    records = env.new_records()
    answer = env.handle(records, FailingClient(env.client, {g1, g2}))
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    assert env.handle(records) == {"batchItemFailures": []}
    env.assert_last(g2, [bo, cy], last)


def test_an_index_that_lags_is_read_past_from_the_table(env, people, harsh):
    """The harsh local stack's index does not show the rows just written: after a pause, the
    Lambda reads each participant's row from the table itself (consistently) and moves it."""
    ana, bo = people["ana"], people["bo"]
    harsh(gsi_lag_ms=60_000, lost_responses=0, throttle=0, duplicate_records=0)
    group = env.conversation(ana, bo, "hi", at(0))
    env.new_records()
    last = env.send(group, bo, "while the index lags", at(5))
    quick = stream_config(env, move_attempts=2)
    assert env.mod.handle_event({"Records": env.new_records()}, env.client, quick) == {"batchItemFailures": []}
    harsh(gsi_lag_ms=0)
    env.assert_last(group, [ana, bo], last)


def test_a_week5_group_behind_the_index_is_never_reported_done_early(env, people, harsh):
    """A group without a header (the week-5 backend's) has no other list of its participants
    than its rows: while the index does not show both, the record is reported failed, to be
    retried, never done; once the index catches up, the retry moves them."""
    ana, bo = people["ana"], people["bo"]
    harsh(gsi_lag_ms=60_000, lost_responses=0, throttle=0, duplicate_records=0)
    group = str(uuid.uuid4())
    env.table.put(layout.group_row(ana["uuid"], bo, group, "hi", at(0)))
    env.table.put(layout.group_row(bo["uuid"], ana, group, "hi", at(0)))
    env.new_records()
    last = env.send(group, bo, "while the index lags", at(5))
    records = env.new_records()
    quick = stream_config(env, move_attempts=2)
    assert env.mod.handle_event({"Records": records}, env.client, quick)["batchItemFailures"]
    harsh(gsi_lag_ms=0)
    assert env.handle(records) == {"batchItemFailures": []}
    env.assert_last(group, [ana, bo], last)
    # and the group now has its header, as the migration would have given it (issue 26, item 5)
    assert env.table.get(layout.header_key(group))["participants"] == sorted([ana["uuid"], bo["uuid"]])


def test_rows_the_api_never_wrote_are_made_from_the_header(env, people):
    """The API writes a first message's header, then the message, then the rows: should it stop
    before the rows, the message's record makes them, from the header's copy of the names."""
    ana, bo = people["ana"], people["bo"]
    group = layout.group_uuid_for(ana["uuid"], bo["uuid"])
    env.table.put(layout.header_item(group, [ana["uuid"], bo["uuid"]], at(0), layout.profiles_of(ana, bo)))
    first = env.send(group, ana, "the API stopped after this", at(0))
    records = env.new_records()
    assert env.mod.handle_event({"Records": records}, env.client, stream_config(env, move_attempts=2)) == {
        "batchItemFailures": []}
    env.assert_last(group, [ana, bo], first)
    [ana_row] = env.rows(ana)
    [bo_row] = env.rows(bo)
    assert (ana_row["user_handle"], ana_row["user_display_name"], ana_row["user_uuid"]) == (
        "bo", "Bo", bo["uuid"])
    assert (bo_row["user_handle"], bo_row["user_uuid"]) == ("ana", ana["uuid"])
    # the API's own puts, should they land afterwards, find their keys taken by the same rows
    with pytest.raises(dynamo.KeyTaken):
        env.table.put_new(layout.group_row(ana["uuid"], bo, group, first["message"], first["sk"]))
    assert env.handle(records) == {"batchItemFailures": []}  # and a replay changes nothing
    env.assert_last(group, [ana, bo], first)


def test_a_header_without_names_waits_for_the_rows(env, people):
    """A header written before headers carried names cannot make a row: the record is retried
    until the row is there, never reported done without it."""
    ana, bo = people["ana"], people["bo"]
    group = layout.group_uuid_for(ana["uuid"], bo["uuid"])
    env.table.put(layout.header_item(group, [ana["uuid"], bo["uuid"]], at(0)))
    first = env.send(group, ana, "hi", at(0))
    records = env.new_records()
    quick = stream_config(env, move_attempts=2)
    assert env.mod.handle_event({"Records": records}, env.client, quick)["batchItemFailures"]
    env.table.put(layout.group_row(ana["uuid"], bo, group, "hi", at(0)))
    env.table.put(layout.group_row(bo["uuid"], ana, group, "hi", at(0)))
    env.mod._groups.clear()
    assert env.handle(records) == {"batchItemFailures": []}
    env.assert_last(group, [ana, bo], first)


def stream_config(env: Env, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(env.config, **changes)


def test_a_move_cut_short_after_its_put_leaves_a_row_readers_skip_and_the_retry_deletes(env, people):
    """The put of a participant's new row landed, the delete of the old one failed: the record is
    reported failed, the participant has two rows of the group for the moment (pattern B shows
    the newest only), and Lambda's retry deletes the old one."""
    from lib.conversations.rows import newest_row_per_group

    ana, bo = people["ana"], people["bo"]
    group = env.conversation(ana, bo, "hi", at(0))
    env.new_records()
    last = env.send(group, bo, "new", at(5))
    records = env.new_records()
    cut = FailingClient(env.client, {group}, operation="DeleteItem")
    assert env.handle(records, cut)["batchItemFailures"]
    # the first participant moved (its new row is put, its old one still there), the other not
    rows = {p["handle"]: [r["sk"] for r in env.rows(p)] for p in (ana, bo)}
    assert sorted(rows.values()) == [[at(0)], [at(5), at(0)]]
    cut_short = next(p for p in (ana, bo) if len(rows[p["handle"]]) == 2)
    assert [r["sk"] for r in newest_row_per_group(env.rows(cut_short))] == [at(5)]
    assert env.handle(records) == {"batchItemFailures": []}
    env.assert_last(group, [ana, bo], last)


class LostDeleteResponses:
    """The Lambda's client, whose deletes land but whose responses are lost: the SDK's retry then
    finds the row gone, and DynamoDB answers ConditionalCheckFailed."""

    def __init__(self, client: Any):
        self.client = client
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def delete_item(self, **params: Any) -> Any:
        self.client.delete_item(**params)
        self.lost += 1
        return self.client.delete_item(**params)  # the retry


def test_a_delete_whose_response_was_lost_loses_no_row(env, people):
    ana, bo = people["ana"], people["bo"]
    group = env.conversation(ana, bo, "hi", at(0))
    env.new_records()
    last = env.send(group, bo, "new", at(5))
    lossy = LostDeleteResponses(env.client)
    assert env.handle(env.new_records(), lossy) == {"batchItemFailures": []}
    assert lossy.lost == 2
    env.assert_last(group, [ana, bo], last)


class StaleIndexClient:
    """The Lambda's client, whose first GSI Query of `group` answers `stale` (DynamoDB's GSI is
    eventually consistent: it may still show rows as they were before a move); later ones are
    current."""

    def __init__(self, client: Any, group: str, stale: list[dict]):
        self.client, self.group, self.stale = client, group, stale

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def query(self, **params: Any) -> Any:
        group = params.get("ExpressionAttributeValues", {}).get(":v0", {}).get("S")
        if params.get("IndexName") and group == self.group and self.stale is not None:
            items, self.stale = self.stale, None
            return {"Items": items, "Count": len(items), "ScannedCount": len(items)}
        return self.client.query(**params)


def test_a_stale_index_never_deletes_another_conversations_row(env, people):
    """bo's row of one conversation moved on, and bo's row of another conversation took its old
    key (the same microsecond). An index read that still shows the old row must not make the
    Lambda delete the other conversation's row (its delete holds only for this group's row), nor
    leave bo two rows of the first."""
    ana, bo, cy = people["ana"], people["bo"], people["cy"]
    g1 = env.conversation(ana, bo, "hello", at(0))
    stale_bo = next(r for r in tables.group_rows(env.table, g1) if r["pk"] == layout.group_pk(bo["uuid"]))
    env.send(g1, ana, "moved on", at(5))
    assert env.handle(env.new_records()) == {"batchItemFailures": []}
    g2 = env.conversation(cy, bo, "other conversation", at(0))  # bo's g2 row: GRP#bo, at(0)
    assert env.handle(env.new_records()) == {"batchItemFailures": []}
    current_ana = next(r for r in tables.group_rows(env.table, g1) if r["pk"] == layout.group_pk(ana["uuid"]))
    last = env.send(g1, ana, "newest", at(9))
    records = env.new_records()

    stale = [dynamo.serialize(stale_bo), dynamo.serialize(current_ana)]
    assert env.handle(records, StaleIndexClient(env.client, g1, stale)) == {"batchItemFailures": []}
    env.assert_last(g1, [ana, bo], last)
    env.assert_last(g2, [bo, cy], {"sk": at(0), "message": "other conversation"})


class RacingClient:
    """Before the first PutItem goes through, another invocation applies `rival`."""

    def __init__(self, env: Env, rival: list[dict]):
        self.env, self.rival, self.raced = env, rival, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env.client, name)

    def put_item(self, **params: Any) -> Any:
        if not self.raced:
            self.raced = True
            assert self.env.handle(self.rival) == {"batchItemFailures": []}
        return self.env.client.put_item(**params)


@pytest.mark.parametrize("rival_is_newer", [True, False])
def test_a_concurrent_mover_leaves_one_row_at_the_newest(env, people, rival_is_newer):
    """Our invocation read the rows; a rival moved them before our writes. Our deletes find the
    old rows gone, so each participant's rows are read from the table and only the newest kept."""
    ana, bo = people["ana"], people["bo"]
    group = env.conversation(ana, bo, "hi", at(0))
    env.new_records()
    ours = env.send(group, ana, "ours", at(5))
    our_records = env.new_records()
    rival = env.send(group, bo, "rival", at(9 if rival_is_newer else 3))
    rival_records = env.new_records()

    assert env.handle(our_records, RacingClient(env, rival_records)) == {"batchItemFailures": []}
    env.assert_last(group, [ana, bo], rival if rival_is_newer else ours)
    # and each row carries its owner's latest read marker (sending marks read) and the count of
    # the other's messages after it
    assert unread_of(env, ana, group) == (ours["sk"], 1 if rival_is_newer else 0)
    assert unread_of(env, bo, group) == (rival["sk"], 0 if rival_is_newer else 1)


def unread_of(env: Env, user: dict, group: str) -> tuple[str, int]:
    """(read marker, unread count) of the user's row of the group (it has exactly one)."""
    [row] = [r for r in env.rows(user) if r["message_group_uuid"] == group]
    return row.get("read_up_to", ""), int(row.get("unread_count", 0))


def test_writes_that_keep_failing_fail_the_record(env, people):
    ana, bo = people["ana"], people["bo"]
    group = env.conversation(ana, bo, "hi", at(0))
    env.new_records()
    env.send(group, ana, "new", at(1))
    records = env.new_records()
    answer = env.handle(records, FailingClient(env.client, {group}, times=100))
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    env.assert_last(group, [ana, bo], {"sk": at(0), "message": "hi"})


# -- the Lambda entry point and its configuration --------------------------------------------
def test_lambda_handler_configures_itself_from_the_environment_once(env, people, stream_lambda,
                                                                     monkeypatch):
    monkeypatch.setenv("DDB_MESSAGE_TABLE", env.settings.ddb_table)
    monkeypatch.setenv("AWS_ENDPOINT_URL", env.settings.aws_endpoint_url)
    stream_lambda.reset()
    try:
        ana, bo = people["ana"], people["bo"]
        group = env.conversation(ana, bo, "hi", at(0))
        new = env.send(group, bo, "via lambda_handler", at(1))
        event = {"Records": env.new_records()}
        assert stream_lambda.lambda_handler(event, None) == {"batchItemFailures": []}
        env.assert_last(group, [ana, bo], new)
        cached = stream_lambda._runtime
        assert stream_lambda.lambda_handler(event, None) == {"batchItemFailures": []}
        assert stream_lambda._runtime is cached  # one client per container
    finally:
        stream_lambda.reset()




# -- its IAM policy allows what it calls, and only that --------------------------------------------

def test_the_policy_allows_every_call_the_lambda_makes(env, people):
    """Through its paths (a move, a key collision, a message of no conversation, a late record
    counted again), every call the function makes is allowed by
    aws/policies/cruddur-messaging-stream.json, and the policy allows no action it never makes."""
    import json

    from lib.config import ROOT

    policy = json.loads((ROOT / "aws" / "policies" / "cruddur-messaging-stream.json").read_text())
    recorder = PolicyRecorder(env.client)
    ana, bo, cy = people["ana"], people["bo"], people["cy"]
    g1, g2 = env.conversation(ana, bo, "hi", at(0)), env.conversation(cy, bo, "hi", at(-1))
    env.new_records()
    env.send(g1, ana, "moved", at(5))
    env.send(g2, cy, "same microsecond", at(5))
    stray = layout.group_uuid_for(ana["uuid"], cy["uuid"])
    env.send(stray, ana, "no conversation", at(6))
    late = env.send(g1, bo, "late", at(4))  # older than the rows once applied: counted again
    records = env.new_records()
    assert env.handle([r for r in records if r["dynamodb"]["Keys"]["sk"]["S"] != late["sk"]], recorder) == {
        "batchItemFailures": []}
    assert env.handle([r for r in records if r["dynamodb"]["Keys"]["sk"]["S"] == late["sk"]], recorder) == {
        "batchItemFailures": []}

    assert {action for action, _, _ in recorder.needed} == {"GetItem", "Query", "PutItem", "DeleteItem",
                                                             "UpdateItem"}
    assert ("Query", "table", f"MSG#{g1}") in recorder.needed  # the count read again
    assert ("Query", "table", f"GRP#{ana['uuid']}") in recorder.needed  # the no-conversation check
    for action, resource, key in recorder.needed:
        assert allowed(policy, action, resource, key), (action, resource, key)
    granted = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
               if a.startswith("dynamodb:")}
    stream_reads = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams"}
    assert granted - stream_reads == {f"dynamodb:{a}" for a, _, _ in recorder.needed}
    assert not any("*" in a for a in granted)
    # and nothing beyond group headers, group rows and reading messages to count them
    assert not allowed(policy, "GetItem", "table", f"MSG#{g1}")
    assert not allowed(policy, "Query", "table", f"IDEM#{ana['uuid']}")
    assert not allowed(policy, "PutItem", "table", f"MSG#{g1}")
