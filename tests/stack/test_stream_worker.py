"""The local stream worker (devstack/stream_worker.py, bin/ddb/stream-worker) over moto: it feeds the
table's stream to the stream Lambda, resumes where it stopped, and retries failed records."""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from domain import unread
from domain import times
from lib import aws
from lib import ddb as dynamo
from lib.conversations import layout
from lib.ddb import Ddb
from devstack import Stack, stream_mapping, start_stream_worker
from devstack.stream_worker import StreamWorker, lambda_environment, lambda_event, load_lambda
from tests import tables

START = datetime(2030, 1, 1, tzinfo=timezone.utc)
WAIT_SECONDS = 10


def at(seconds: float) -> str:
    return times.iso(START + timedelta(seconds=seconds))


def person(handle: str) -> dict[str, str]:
    return {"uuid": str(uuid.uuid4()), "display_name": handle.title(), "handle": handle}


def wait_until(check: Callable[[], bool], step: Callable[[], Any] = lambda: None,
               timeout: float = WAIT_SECONDS) -> None:
    """Run `step` until `check` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        step()
        time.sleep(0.02)


@pytest.fixture(scope="module")
def stream_lambda():
    return load_lambda()


@pytest.fixture(scope="module")
def lambda_client(settings):
    return aws.client(settings, "dynamodb")


class Recorder:
    """A handler that calls the Lambda's handler with a given client and remembers what it got."""

    def __init__(self, stream_lambda, client, table: str):
        self.mod, self.client = stream_lambda, client
        self.config = stream_lambda.Config(table=table)
        self.batches: list[list[str]] = []  # sequence numbers of each batch

    def __call__(self, event: dict, context: Any) -> dict:
        json.dumps(event)  # as Lambda would hand it: plain JSON
        assert {r["eventSource"] for r in event["Records"]} == {"aws:dynamodb"}
        assert all(r["eventSourceARN"].endswith(r["eventSourceARN"].split("/stream/")[1])
                   for r in event["Records"])
        self.batches.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        return self.mod.handle_event(event, self.client, self.config, context)

    @property
    def delivered(self) -> list[str]:
        return [seq for batch in self.batches for seq in batch]


class Chat:
    def __init__(self, settings):
        self.table = Ddb(settings)
        self.a, self.b = person("ana"), person("bo")
        self.group = layout.group_uuid_for(self.a["uuid"], self.b["uuid"])
        self.table.put(layout.header_item(self.group, [self.a["uuid"], self.b["uuid"]], at(0)))
        for row in layout.message_rows(self.a, self.b, self.group, "hi", at(0)):
            self.table.put(row)
        self.table.put(layout.message_item(self.group, self.a, "hi", at(0)))

    def send(self, text: str, sk: str) -> dict:
        item = layout.message_item(self.group, self.b, text, sk)
        self.table.put(item)
        return item

    def rows(self) -> list[list[dict]]:
        return [[r for r in tables.groups_page(self.table, u["uuid"], 10).items
                 if r["message_group_uuid"] == self.group] for u in (self.a, self.b)]

    def shows(self, message: dict) -> bool:
        return all(len(mine) == 1 and (mine[0]["sk"], mine[0]["message"]) == (message["sk"], message["message"])
                   for mine in self.rows())


@pytest.fixture
def chat(fresh_table) -> Chat:
    return Chat(fresh_table)


def deliverable(worker: StreamWorker) -> list[str]:
    """The sequence numbers of the stream's records that the mapping's filter lets through."""
    patterns = stream_mapping.stream_patterns()
    return [r["dynamodb"]["SequenceNumber"]
            for r in lambda_event(stream_records(worker), worker.stream_arn or "", "us-east-1")["Records"]
            if stream_mapping.delivered(patterns, r)]


def stream_seqs(worker: StreamWorker) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in stream_records(worker)]


def stream_records(worker: StreamWorker) -> list[dict]:
    """Every record in the table's stream, read independently of the worker."""
    streams = worker.streams
    shard = streams.describe_stream(StreamArn=worker.stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=worker.stream_arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return streams.get_records(ShardIterator=iterator)["Records"]


def test_a_burst_reaches_both_group_rows_under_a_harsh_store(fresh_table, chat, stream_lambda,
                                                              lambda_client, tmp_path, harsh):
    """A burst of messages through the worker while the store is harsh (a lagging index, lost
    responses, throttling, records delivered twice): both rows end on the newest message."""
    recorder = Recorder(stream_lambda, lambda_client, fresh_table.ddb_table)
    worker = StreamWorker(fresh_table, recorder, tmp_path / "cp.json", batch_size=7)
    # the senders' own puts are unconditional: three lost responses in a row would be their
    # error, not the worker's; the worker's writes then lose theirs
    harsh(lost_responses=0)
    last = [chat.send(f"m{i}", at(i + 1)) for i in range(40)][-1]
    harsh(lost_responses=0.1)
    wait_until(lambda: chat.shows(last), step=worker.poll_once, timeout=60)
    harsh(duplicate_records=0, gsi_lag_ms=0, lost_responses=0, throttle=0)
    # duplicates delivered, and harmless: each group row once, on the newest message
    assert len(recorder.delivered) > len(set(recorder.delivered))
    assert chat.shows(last)


def test_messages_put_into_the_table_reach_both_group_rows(fresh_table, chat, stream_lambda,
                                                            lambda_client, tmp_path):
    recorder = Recorder(stream_lambda, lambda_client, fresh_table.ddb_table)
    worker = StreamWorker(fresh_table, recorder, tmp_path / "cp.json")
    last = [chat.send(f"m{i}", at(i + 1)) for i in range(5)][-1]
    worker.drain()
    assert chat.shows(last)
    # from TRIM_HORIZON: every record the mapping's filter lets through, each once (the
    # Lambda's own moves are records too, filtered out)
    assert recorder.delivered == deliverable(worker)[:len(recorder.delivered)]
    assert len(set(recorder.delivered)) == len(recorder.delivered)

    new = chat.send("later", at(60))
    worker.drain()
    assert chat.shows(new)
    assert len(set(recorder.delivered)) == len(recorder.delivered)

    # the checkpoint names the stream and its shard, at the last record read (the filtered ones
    # count as processed, as the event source mapping counts them)
    saved = json.loads((tmp_path / "cp.json").read_text())
    [(arn, shards)] = saved.items()
    assert arn == worker.stream_arn and arn.startswith("arn:aws:dynamodb:")
    assert list(shards.values()) == [stream_seqs(worker)[-1]]


def test_records_after_a_cancelled_transaction_are_not_missed(fresh_table, chat, stream_lambda,
                                                               lambda_client, tmp_path):
    """moto swaps a table's stream object when a transaction on it is cancelled; an iterator
    taken before that would never see another record."""
    recorder = Recorder(stream_lambda, lambda_client, fresh_table.ddb_table)
    worker = StreamWorker(fresh_table, recorder, tmp_path / "cp.json", batch_size=2)
    worker.poll_once()
    assert worker.shards and next(iter(worker.shards.values())).iterator, "holds an iterator"
    header = dynamo.serialize(layout.header_item(chat.group, [chat.a["uuid"], chat.b["uuid"]], at(0)))
    with pytest.raises(ClientError, match="TransactionCanceled"):  # the header exists
        chat.table.client.transact_write_items(TransactItems=[{"Put": {
            "TableName": chat.table.table, "Item": header, "ConditionExpression": "attribute_not_exists(pk)"}}])
    new = chat.send("after the cancelled transaction", at(30))
    wait_until(lambda: chat.shows(new), worker.poll_once)


def test_a_restarted_worker_neither_skips_nor_repeats_records(fresh_table, chat, stream_lambda,
                                                               lambda_client, tmp_path):
    checkpoint = tmp_path / "cp.json"
    first = Recorder(stream_lambda, lambda_client, fresh_table.ddb_table)
    sent = [chat.send(f"m{i}", at(i + 1)) for i in range(6)]
    worker = StreamWorker(fresh_table, first, checkpoint, batch_size=3)
    worker.poll_once()
    # 6 of the 11 records so far (the table's layout mark, the chat's four items, then m0), of
    # which the function got the two messages: stopped midway through the messages
    worker.poll_once()
    assert len(first.delivered) == 2 and chat.shows(sent[0]) and not chat.shows(sent[1])
    del worker

    sent += [chat.send(f"m{i}", at(i + 1)) for i in range(6, 9)]
    second = Recorder(stream_lambda, lambda_client, fresh_table.ddb_table)
    restarted = StreamWorker(fresh_table, second, checkpoint, batch_size=3)
    restarted.drain()
    assert chat.shows(sent[-1])
    # the new worker went on right after the last record the first one finished: every message,
    # once, in order
    assert first.delivered + second.delivered == deliverable(restarted)


class FailOnce:
    """A client whose first PutItem of a row of `group` fails."""

    def __init__(self, client, group: str):
        self.client, self.group, self.failed = client, group, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_item(self, **params: Any) -> Any:
        group = params["Item"].get("message_group_uuid", {}).get("S")
        if not self.failed and group == self.group:
            self.failed = True
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}},
                              "PutItem")
        return self.client.put_item(**params)


def test_a_failed_record_is_retried_from_itself(fresh_table, stream_lambda, lambda_client, tmp_path):
    table = Ddb(fresh_table)
    first, second = Chat(fresh_table), Chat(fresh_table)  # two groups, disjoint users
    checkpoint = tmp_path / "cp.json"
    recorder = Recorder(stream_lambda, FailOnce(lambda_client, second.group), fresh_table.ddb_table)
    worker = StreamWorker(fresh_table, recorder, checkpoint)
    worker.drain()  # the setup's records (no messages but the first ones, nothing to move)
    done = recorder.delivered[-1]

    ok = first.send("first group", at(1))
    failing = second.send("second group fails once", at(2))
    later = second.send("second group, later", at(3))
    worker.poll_once()
    [batch] = recorder.batches[-1:]
    assert len(batch) == 3
    # the first group was moved (the records of the Lambda's move come later in the stream);
    # the second group failed: its first record, the batch's second one, is where to resume
    assert first.shows(ok) and not second.shows(later)
    assert json.loads(checkpoint.read_text())[worker.stream_arn] == {
        next(iter(worker.shards)): batch[0]}
    assert int(batch[0]) > int(done)

    wait_until(lambda: second.shows(later), worker.poll_once)
    retry = recorder.batches[2]
    assert retry[0] == batch[1], "resumed AT the failed record"
    worker.drain()
    assert first.shows(ok) and second.shows(later)
    assert failing["sk"] < later["sk"]
    assert table.get(layout.header_key(second.group)) is not None


def test_a_handler_exception_retries_the_whole_batch(fresh_table, chat, tmp_path):
    calls: list[list[str]] = []

    def flaky(event: dict, context: Any) -> dict:
        calls.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        if len(calls) == 1:
            raise RuntimeError("boom")
        return {"batchItemFailures": []}

    worker = StreamWorker(fresh_table, flaky, tmp_path / "cp.json")
    worker.poll_once()
    # nothing the function was given is saved as finished (only the filtered records before it)
    saved = json.loads((tmp_path / "cp.json").read_text()) if (tmp_path / "cp.json").exists() else {}
    assert all(int(seq) < int(calls[0][0]) for shards in saved.values() for seq in shards.values())
    wait_until(lambda: len(calls) >= 2, worker.poll_once)
    assert calls[1] == calls[0]






def test_the_worker_waits_for_a_missing_table(settings, tmp_path):
    missing = settings.with_(ddb_table=f"missing-{uuid.uuid4().hex[:8]}")
    worker = StreamWorker(missing, lambda e, c: None, tmp_path / "cp.json")
    assert worker.poll_once() == 0 and worker.stream_arn is None


def test_lambda_environment_points_the_lambda_at_the_same_table(settings):
    env = lambda_environment(settings.with_(ddb_table="t"), env={})
    assert env["DDB_MESSAGE_TABLE"] == "t"
    assert env["AWS_ENDPOINT_URL"] == settings.aws_endpoint_url
    assert env["AWS_DEFAULT_REGION"] == settings.aws_region
    assert env["AWS_ACCESS_KEY_ID"] == "test"
    assert "AWS_ENDPOINT_URL" not in lambda_environment(settings.with_(aws_endpoint_url=None), env={})


# -- as a process ------------------------------------------------------------------------------
def test_bin_dev_hook_runs_the_worker_until_sigterm(fresh_table, chat, tmp_path, monkeypatch):
    """start_stream_worker (what ./bin/dev calls) runs the worker as a process: messages put into
    the table become both participants' last message."""
    checkpoint = tmp_path / "cp.json"
    monkeypatch.setenv("STREAM_WORKER_CHECKPOINT", str(checkpoint))
    stack = Stack()
    assert start_stream_worker(fresh_table.with_(aws_endpoint_url=None), stack) is None
    assert stack.processes == {}, "not started against AWS"
    proc = start_stream_worker(fresh_table, stack)
    assert stack.processes["stream"] is proc
    try:
        wait_until(checkpoint.exists)  # it is up and has read the setup's records
        message = chat.send("through the worker", at(100))
        wait_until(lambda: chat.shows(message))
        assert proc.poll() is None
    finally:
        stack.stop()
    assert proc.returncode == 0  # a clean stop on SIGTERM


def test_the_script_refuses_prod_and_answers_help(repo_root):
    script = str(repo_root / "bin" / "ddb" / "stream-worker")
    result = subprocess.run([script, "--prod"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "local stack only" in result.stderr
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--checkpoint" in result.stdout


def test_a_message_sent_through_the_api_is_soon_the_last_for_both(api, settings, stream_lambda,
                                                                   lambda_client, tmp_path):
    """With the worker running, as under ./bin/dev, a POST shows in both users' group lists."""
    handler = Recorder(stream_lambda, lambda_client, settings.ddb_table)
    # skip what the suite wrote so far (the whole suite's records; applying them is what the
    # other tests check): big batches to a handler that does nothing, then the real one
    worker = StreamWorker(settings, lambda event, context: None, tmp_path / "cp.json", batch_size=1000)
    worker.drain()
    worker.handler, worker.batch_size = handler, 100
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.2), daemon=True)
    thread.start()
    try:
        groups = api.get("/api/message_groups", "andrewbrown").json()
        [group] = [g["uuid"] for g in groups if g["handle"] == "bayko"]
        text = f"stream check {uuid.uuid4().hex[:8]}"
        sent = api.post("/api/messages", "andrewbrown",
                        json={"message_group_uuid": group, "message": text})
        assert sent.status_code == 200, sent.text

        def last_for(handle: str, other: str) -> str | None:
            rows = api.get("/api/message_groups", handle).json()
            return next((g["message"] for g in rows if g["handle"] == other), None)

        wait_until(lambda: last_for("andrewbrown", "bayko") == text and last_for("bayko", "andrewbrown") == text)
        assert api.get("/api/message_groups", "andrewbrown").json()[0]["message"] == text
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_bin_dev_restarts_a_crashed_worker_with_backoff(fresh_table, chat, tmp_path, monkeypatch):
    """A stream worker that dies (SIGKILL) is started again by the stack ./bin/dev runs, after
    1 s, then 2 s, ... if it keeps dying; the rest of the stack goes on, and so do the messages."""
    monkeypatch.setenv("STREAM_WORKER_CHECKPOINT", str(tmp_path / "cp.json"))
    stack = Stack()
    first = start_stream_worker(fresh_table, stack)
    try:
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert stack.dead() is None, "not a reason to stop the stack"
        now = time.monotonic()
        assert stack.tend(now) == [f"stream exited with code {first.returncode}; restarting in 1s"]
        assert stack.tend(now + 0.5) == []
        [restarted] = stack.tend(now + 1.0)
        second = stack.processes["stream"]
        assert second is not first and restarted == f"stream restarted (pid {second.pid})"
        message = chat.send("after the crash", at(200))
        wait_until(lambda: chat.shows(message), timeout=30)
        # dying again at once: the next wait is longer
        second.send_signal(signal.SIGKILL)
        second.wait()
        assert stack.tend(now + 2.0)[0].endswith("restarting in 2s")
    finally:
        stack.stop()


# -- the mapping's filter (issue 24, item 12) ------------------------------------------------------

def record_of(item: dict, event_name: str = "INSERT") -> dict:
    """A stream record as the function receives it, of a plain item."""
    image = {k: {"S": v} for k, v in item.items() if isinstance(v, str)}
    return {"eventName": event_name, "eventSource": "aws:dynamodb",
            "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "NewImage": image,
                         "SequenceNumber": "1"}}




def test_the_worker_hands_the_function_only_what_the_filter_lets_through(fresh_table, chat, stream_lambda,
                                                                       lambda_client, tmp_path):
    recorder = Recorder(stream_lambda, lambda_client, fresh_table.ddb_table)
    worker = StreamWorker(fresh_table, recorder, tmp_path / "cp.json")
    sent = [chat.send(f"m{i}", at(i + 1)) for i in range(3)]
    wait_until(lambda: chat.shows(sent[-1]), worker.poll_once)
    worker.drain()
    everything = stream_seqs(worker)
    assert len(everything) > len(recorder.delivered), "rows, headers and marks were filtered out"
    # the chat's first message and the three sent, once each: nothing of the function's own writes
    assert len(recorder.delivered) == len(set(recorder.delivered)) == 4
    assert json.loads((tmp_path / "cp.json").read_text())[worker.stream_arn] == {
        next(iter(worker.shards)): everything[-1]}, "the filtered records count as processed"


class Deadline:
    """A Lambda context whose remaining time runs out after `groups` calls."""

    def __init__(self, groups: int):
        self.calls = 0
        self.groups = groups
        self.aws_request_id = "test"

    def get_remaining_time_in_millis(self) -> int:
        self.calls += 1
        return 60_000 if self.calls <= self.groups else 1_000


def test_groups_left_when_time_runs_out_are_reported_not_timed_out(fresh_table, stream_lambda, lambda_client):
    first, second = Chat(fresh_table), Chat(fresh_table)
    ok = first.send("in time", at(1))
    late = second.send("out of time", at(2))
    records = lambda_event([record_of(ok), record_of(late)], "arn:aws:dynamodb:x:1:table/t/stream/s",
                           "us-east-1")["Records"]
    records[0]["dynamodb"]["SequenceNumber"], records[1]["dynamodb"]["SequenceNumber"] = "10", "11"
    config = stream_lambda.Config(table=fresh_table.ddb_table)
    answer = stream_lambda.handle_event({"Records": records}, lambda_client, config, Deadline(groups=1))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "11"}]}
    assert first.shows(ok) and not second.shows(late)
    assert stream_lambda.handle_event({"Records": records[1:]}, lambda_client, config,
                                      Deadline(groups=1)) == {"batchItemFailures": []}
    assert second.shows(late)


def test_a_table_without_a_stream_is_reported_once_and_asked_about_rarely(settings, tmp_path, caplog):
    """Issue 26, item 3: a table whose stream is off (another store, or a table made by hand) is
    an error that names the table and what to do, logged once; the worker asks about it again
    only every refresh interval, not on every poll."""
    from lib.conversations import layout
    name = f"test-nostream-{uuid.uuid4().hex[:8]}"
    bare = settings.with_(ddb_table=name)
    definition = layout.table_definition(name)
    definition.pop("StreamSpecification")
    Ddb(bare).create_table(definition)
    try:
        worker = StreamWorker(bare, lambda event: {"batchItemFailures": []}, tmp_path / "cp.json",
                              refresh_seconds=60)
        asked = []
        worker.dynamodb.meta.events.register("before-call.dynamodb.DescribeTable", lambda **_: asked.append(1))
        with caplog.at_level(logging.INFO, logger="stream-worker"):
            for _ in range(20):
                assert worker.poll_once() == 0
        assert len(asked) == 1
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [f"table {name} has no stream: conversation lists will not change; turn it on "
                          "(bin/ddb/schema-load does, with new images)"]
    finally:
        Ddb(bare).delete_table()


def test_a_backlog_of_thousands_of_records_is_replayed_group_by_group_not_record_by_record(
        fresh_table, stream_lambda, tmp_path):
    """Issue 26, item 1: a stack stopped while behind. On restart the worker reads the backlog in
    the deployed mapping's batches (1,000 records: one GetRecords call each), and the Lambda moves
    each group once per batch, so the work before a new message's row is current grows with the
    groups and the batches, not the records: a new message is served within seconds of the
    restart. (The time itself is measured by ./bin/bench, never asserted here.)"""
    chats = [Chat(fresh_table) for _ in range(25)]
    checkpoint = tmp_path / "cp.json"
    before = StreamWorker(fresh_table, Recorder(stream_lambda, aws.client(fresh_table, "dynamodb"),
                                                fresh_table.ddb_table), checkpoint)
    before.drain()
    del before  # stopped; its checkpoint stays

    per_chat = 100
    backlog = [layout.message_item(chat.group, chat.b, f"while stopped {i}", at(1 + i))
               for chat in chats for i in range(per_chat)]
    Ddb(fresh_table).batch_write(backlog)  # 2,500 records the worker has not read
    client = aws.client(fresh_table, "dynamodb")
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    recorder = Recorder(stream_lambda, client, fresh_table.ddb_table)
    restarted = StreamWorker(fresh_table, recorder, checkpoint)
    newest = chats[0].send("after the restart", at(1_000))
    restarted.drain()

    assert chats[0].shows(newest)
    for chat in chats[1:]:
        assert chat.shows(backlog[chats.index(chat) * per_chat + per_chat - 1])
    for chat in chats:  # every message of the backlog counted as unread for the one who did not send it
        [[ana_row], [bo_row]] = chat.rows()
        assert layout.unread_of(ana_row) == min(per_chat + (chat is chats[0]), unread.UNREAD_CAP)
        assert layout.unread_of(bo_row) == 0
    assert len(recorder.delivered) == len(backlog) + 1
    # 2,501 records in 3 batches; each batch moves each of its groups once: a Query and four
    # writes (record by record, in batches of 100, it was 26 batches and 650 moves)
    assert len(recorder.batches) == 3
    assert calls.count("Query") <= 3 * len(chats)
    assert len(calls) <= 3 * len(chats) * 5 + len(chats)  # and a header read per group at most
