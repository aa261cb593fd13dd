"""The conversation store's use cases, fast: over the in-memory table (tests/memory_table.py, held
to moto's behaviour by tests/stack/test_table_contract.py), made as unkind as AWS one step at a time.
The same behaviours are tested end to end through HTTP over moto in test_api_e2e.py and
test_unread.py; these say exactly which step each one survives."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone

import pytest

from domain import times
from domain.conversations import Idempotency
from domain.errors import InvalidInput, Unavailable
from lib.conversations import layout, table_setup, week5
from lib.conversations.records import NewMessage
from lib.conversations.store import ConversationStore
from lib.conversations.stream import RowMover, apply_batch
from lib.ddb import StoreUnavailable
from tests.memory_table import MemoryTable



def person(handle: str) -> dict[str, str]:
    return {"uuid": str(uuid.uuid4()), "display_name": handle.title(), "handle": handle}


@pytest.fixture
def table() -> MemoryTable:
    table = MemoryTable(exists=False)
    assert table_setup.create_table(table)
    return table


@pytest.fixture
def store(table) -> ConversationStore:
    return ConversationStore(table)


def deliver(table: MemoryTable, *, twice: bool = False) -> dict:
    """What the stream Lambda does with what the table's stream holds now (every record twice
    when `twice`: streams deliver at least once)."""
    records = table.stream_records()
    return apply_batch(records + records if twice else records, RowMover(table))


def messages(table: MemoryTable, group: str) -> list[dict]:
    return list(table.query_items(layout.message_pk(group)))


def fingerprint(text: str) -> str:
    return f"fp:{text}"


ANA, BO, CY = person("ana"), person("bo"), person("cy")


# -- sending ------------------------------------------------------------------------------------
def test_a_first_message_starts_one_conversation_that_both_see(store, table):
    sent = store.send_to_user(ANA, BO, "hello")
    group = sent.message.message_group_uuid
    assert sent.named and group == layout.group_uuid_for(ANA["uuid"], BO["uuid"])
    assert table.get(layout.header_key(group))["participants"] == sorted([ANA["uuid"], BO["uuid"]])
    again = store.send_to_user(BO, ANA, "hi back")
    assert again.message.message_group_uuid == group, "the pair's one conversation, whoever writes"
    deliver(table)
    [for_bo] = store.conversations(BO["uuid"], 10).items
    assert (for_bo.handle, for_bo.last_message, for_bo.unread_count) == ("ana", "hi back", 0)
    [for_ana] = store.conversations(ANA["uuid"], 10).items
    assert (for_ana.handle, for_ana.unread_count) == ("bo", 1)
    assert [m.text for m in store.messages(group, 10).items] == ["hi back", "hello"]


def test_a_lost_response_on_every_write_still_makes_one_message(store, table):
    """The SDK retries a write whose answer was lost; the retry finds the key taken by its own
    first attempt, and the store recognises it (header, message and rows alike)."""
    table.lose_responses(4)  # header, message, both rows
    sent = store.send_to_user(ANA, BO, "once")
    group = sent.message.message_group_uuid
    assert [m["message_uuid"] for m in messages(table, group)] == [sent.message.uuid]
    assert len(store.conversations(ANA["uuid"], 10).items) == 1


def test_two_first_messages_at_once_make_one_conversation(store, table):
    """Bo's first message lands between Ana's reads and her header's write: Ana's finds the
    header taken by another first message and goes into that conversation."""
    other = ConversationStore(table)  # another process
    table.before_write(lambda: other.send_to_user(BO, ANA, "me first"))
    sent = store.send_to_user(ANA, BO, "no, me")
    group = sent.message.message_group_uuid
    assert sorted(m["message"] for m in messages(table, group)) == ["me first", "no, me"]
    assert [i for i in table.scan_all() if i["pk"].startswith(layout.HEADER_PREFIX)
            and i["pk"].endswith(group)].__len__() == 1


def test_a_message_at_a_taken_microsecond_takes_a_new_time(store, table, monkeypatch):
    """Another message of the group holds the microsecond this one picked: it takes a new time."""
    group = store.send_to_user(ANA, BO, "first").message.message_group_uuid
    taken, free = "2031-01-01T00:00:00.000000+00:00", "2031-01-01T00:00:00.000001+00:00"
    table.put(layout.message_item(group, BO, "already here", taken))
    picks = iter([taken, free])
    monkeypatch.setattr(times, "now_iso", lambda: next(picks))
    sent = store.send_to_group(ANA, group, "second")
    assert sent.message.created_at == free
    assert {m["message"] for m in messages(table, group)} == {"first", "already here", "second"}


# -- idempotency --------------------------------------------------------------------------------
def test_a_retry_with_the_same_key_answers_the_same_message(store, table):
    key = Idempotency("k-1", fingerprint("hello"))
    first = store.send_to_user(ANA, BO, "hello", key)
    second = store.send_to_user(ANA, BO, "hello", key)
    assert second == first
    assert len(messages(table, first.message.message_group_uuid)) == 1


def test_a_key_used_for_another_request_is_refused(store, table):
    store.send_to_user(ANA, BO, "hello", Idempotency("k-2", fingerprint("hello")))
    with pytest.raises(InvalidInput) as refused:
        store.send_to_user(ANA, BO, "other text", Idempotency("k-2", fingerprint("other text")))
    assert refused.value.codes == ["idempotency_key_reused"]


def test_a_retry_after_a_failure_between_record_and_message_writes_that_message(store, table):
    """The first attempt wrote its record, then its message's put failed (throttled past the SDK's
    retries): the retry writes that very message (same uuid and time), once."""
    group = store.send_to_user(ANA, BO, "start").message.message_group_uuid
    key = Idempotency("k-3", fingerprint("again"))
    table.fail_writes(1, when=lambda op, item: str(item.get("pk", "")).startswith(layout.MESSAGE_PREFIX))
    with pytest.raises(StoreUnavailable):
        store.send_to_group(ANA, group, "again", key)
    record = table.get(layout.idempotency_key(ANA["uuid"], "k-3"))
    sent = store.send_to_group(ANA, group, "again", key)
    assert (sent.message.uuid, sent.message.created_at) == (record["message_uuid"], record["created_at"])
    assert [m["message"] for m in messages(table, group)].count("again") == 1


def test_an_expired_record_is_claimed_afresh(store, table):
    key = Idempotency("k-4", fingerprint("x"))
    table.put({**layout.idempotency_key(ANA["uuid"], "k-4"), "fingerprint": "something else",
               "expires_at": 1})
    sent = store.send_to_user(ANA, BO, "x", key)
    assert table.get(layout.idempotency_key(ANA["uuid"], "k-4"))["message_uuid"] == sent.message.uuid


# -- who takes part -----------------------------------------------------------------------------
def test_only_participants_take_part_and_strangers_cost_the_same_reads(store, table):
    group = store.send_to_user(ANA, BO, "private").message.message_group_uuid
    assert store.is_participant(group, ANA["uuid"]) and store.is_participant(group, BO["uuid"])
    table.calls.clear()
    assert not store.is_participant(group, CY["uuid"])
    existing = dict(table.calls)
    table.calls.clear()
    assert not store.is_participant(str(uuid.uuid4()), CY["uuid"])
    assert dict(table.calls) == existing == {"get_item": 1}
    table.calls.clear()
    assert store.is_participant(group, ANA["uuid"]) and not table.calls, "a participant: from the cache"


# -- read markers -------------------------------------------------------------------------------
def test_marking_read_moves_forward_only_and_clamps_to_the_newest_message(store, table):
    group = store.send_to_user(ANA, BO, "one").message.message_group_uuid
    second = store.send_to_group(ANA, group, "two").message
    deliver(table)
    assert store.unread_summary(BO["uuid"]) == (1, 2)
    assert store.mark_read(group, BO["uuid"], datetime(2999, 1, 1, tzinfo=timezone.utc)) == 0
    row = store.conversations(BO["uuid"], 10).items[0]
    assert row.unread_count == 0
    marker = max(i["read_up_to"] for i in table.query_items(layout.group_pk(BO["uuid"])))
    assert marker == second.created_at, "a future marker is clamped to the newest message"
    assert store.mark_read(group, BO["uuid"], datetime(2000, 1, 1, tzinfo=timezone.utc)) == 0, "never back"
    store.send_to_group(ANA, group, "three")
    deliver(table)
    assert store.unread_summary(BO["uuid"]) == (1, 1)


def test_marking_read_before_the_rows_exist_says_try_again(store, table):
    group = store.send_to_user(ANA, BO, "hi").message.message_group_uuid
    for row in list(table.query_items(layout.group_pk(BO["uuid"]))):
        table.delete_if(row, {})
    with pytest.raises(Unavailable) as settling:
        store.mark_read(group, BO["uuid"])
    assert settling.value.codes == ["conversation_settling"]


def test_a_mark_racing_a_move_ends_on_the_moved_row(store, table):
    group = store.send_to_user(ANA, BO, "one").message.message_group_uuid
    deliver(table)
    store.send_to_group(ANA, group, "two")
    table.before_write(lambda: deliver(table))  # the stream moves Bo's row under the mark
    assert store.mark_read(group, BO["uuid"]) == 0
    [row] = store.conversations(BO["uuid"], 10).items
    assert (row.last_message, row.unread_count) == ("two", 0)


# -- the stream ---------------------------------------------------------------------------------
def test_duplicated_and_replayed_records_count_each_message_once(store, table):
    group = store.send_to_user(ANA, BO, "one").message.message_group_uuid
    for text in ("two", "three"):
        store.send_to_group(ANA, group, text)
    records = table.stream_records()
    assert apply_batch(records + records, RowMover(table)) == {"batchItemFailures": []}
    assert apply_batch(records, RowMover(table)) == {"batchItemFailures": []}  # replayed later
    assert store.unread_summary(BO["uuid"]) == (1, 3)
    assert len(list(table.query_items(layout.group_pk(BO["uuid"])))) == 1, "no leftover row"


def test_the_stream_makes_rows_the_api_never_wrote(store, table):
    """The API stopped after the message, before the rows: the message's record makes them, from
    the header's copy of both participants' names (the index shows none, so it is asked again)."""
    table.fail_writes(1, when=lambda op, item: str(item.get("pk", "")).startswith(layout.GROUP_PREFIX))
    with pytest.raises(StoreUnavailable):  # the request fails: a retry with its key answers the message
        store.send_to_user(ANA, BO, "hello")
    group = layout.group_uuid_for(ANA["uuid"], BO["uuid"])
    assert [m["message"] for m in messages(table, group)] == ["hello"]
    assert list(table.query_items(layout.group_pk(BO["uuid"]))) == []
    assert deliver(table) == {"batchItemFailures": []}
    [row] = store.conversations(BO["uuid"], 10).items
    assert (row.message_group_uuid, row.handle, row.unread_count) == (group, "ana", 1)


def test_an_index_behind_the_table_is_never_trusted_for_a_missing_row(store, table):
    """The index does not show the rows yet: the mover reads them from the table itself (after a
    pause), moves them, and leaves no second row behind."""
    table.freeze_index()  # shows nothing written from here on
    group = store.send_to_user(ANA, BO, "one").message.message_group_uuid
    store.send_to_group(BO, group, "two")
    assert deliver(table) == {"batchItemFailures": []}
    table.catch_up_index()
    assert [c.last_message for c in store.conversations(ANA["uuid"], 10).items] == ["two"]
    assert len(list(table.query_items(layout.group_pk(ANA["uuid"])))) == 1
    assert store.unread_summary(ANA["uuid"]) == (1, 1)


def test_a_replay_finds_the_row_a_failed_move_left_where_the_index_cannot_see_it(store, table):
    """A move that failed part-way left a second row, too young for the (lagging) index to show;
    the replay finds its row at or past the message, and then reads the rows from the batch's
    first message on from the table itself, so the leftover goes."""
    group = store.send_to_user(ANA, BO, "one").message.message_group_uuid
    store.send_to_group(ANA, group, "two")
    records = table.stream_records()
    assert apply_batch(records, RowMover(table)) == {"batchItemFailures": []}
    [row] = table.query_items(layout.group_pk(BO["uuid"]))
    table.freeze_index()
    first = next(r for r in records if r["dynamodb"]["NewImage"].get("message", {}).get("S") == "one")
    leftover = {**row, "sk": first["dynamodb"]["NewImage"]["sk"]["S"], "message": "one"}
    table.put(leftover)  # what the failed move left; the index does not show it
    assert apply_batch(records, RowMover(table)) == {"batchItemFailures": []}  # the replay
    assert [r["message"] for r in table.query_items(layout.group_pk(BO["uuid"]))] == ["two"]


def test_a_lost_response_to_a_count_update_is_not_a_failure(store, table):
    """The update of a row's marker and count landed and its response was lost: the SDK's retry
    finds the condition no longer holds, and the row carrying what was written counts as done."""
    group = store.send_to_user(ANA, BO, "one").message.message_group_uuid
    deliver(table)
    [row] = table.query_items(layout.group_pk(BO["uuid"]))
    table.lose_responses(1)
    assert RowMover(table).settle_count(group, BO["uuid"], row, row["sk"], 0, again=False)
    [after] = table.query_items(layout.group_pk(BO["uuid"]))
    assert (after["read_up_to"], after["unread_count"]) == (row["sk"], 0)


def test_a_failing_group_names_its_first_record_for_the_retry(store, table):
    g1 = store.send_to_user(ANA, BO, "one").message.message_group_uuid
    store.send_to_user(ANA, CY, "two")
    deliver(table)
    store.send_to_user(ANA, CY, "three")
    store.send_to_group(ANA, g1, "four")
    records = table.stream_records()
    table.fail_writes(10, when=lambda op, item: op == "put_item" and str(item.get("pk", "")) == layout.group_pk(BO["uuid"]))
    answer = apply_batch(records, RowMover(table))
    first_of_g1 = next(r for r in records if layout.message_pk(g1) == r["dynamodb"]["NewImage"]["pk"]["S"])
    assert answer == {"batchItemFailures": [{"itemIdentifier": first_of_g1["dynamodb"]["SequenceNumber"]}]}


def test_the_groups_of_a_batch_are_moved_several_at_once(store, table):
    """A backlog's batch holds many groups; each is a few calls, and they are independent, so
    several are moved at once (issue 26, item 1). Proof: the first writes of three groups meet at
    a barrier, which moving one group after another would never reach (the group would fail)."""
    pairs = [(person(f"a{i}"), person(f"b{i}")) for i in range(3)]
    for a, b in pairs:
        store.send_to_user(a, b, f"hello {b['handle']}")
    records = table.stream_records()
    meet = threading.Barrier(3, timeout=5)
    for _ in pairs:
        table.before_write(meet.wait)
    assert apply_batch(records, RowMover(table), concurrency=3) == {"batchItemFailures": []}
    for a, b in pairs:
        [row] = store.conversations(a["uuid"], 10).items
        assert (row.handle, row.last_message) == (b["handle"], f"hello {b['handle']}")


# -- week-5 tables ------------------------------------------------------------------------------
def week5_conversation(table: MemoryTable, a: dict, b: dict, text: str) -> str:
    """A conversation as the bootcamp's week-5 backend left it: a random group, two rows, the
    messages; no header, and no layout mark on the table."""
    group, at = str(uuid.uuid4()), "2024-05-01T10:00:00.000000+00:00"
    table.batch_write([layout.message_item(group, a, text, at),
                       layout.group_row(a["uuid"], b, group, text, at),
                       layout.group_row(b["uuid"], a, group, text, at)])
    return group


def test_a_week5_conversation_is_found_and_kept_until_migrated():
    table = MemoryTable()
    old = week5_conversation(table, ANA, BO, "from week 5")
    store = ConversationStore(table)
    assert not store.layout_current()
    assert store.is_participant(old, BO["uuid"]) and not store.is_participant(old, CY["uuid"])
    sent = store.send_to_user(BO, ANA, "still here")
    assert sent.message.message_group_uuid == old, "never a second conversation beside it"
    week5.apply(table, week5.plan(table.scan_all()))
    fresh = ConversationStore(table)
    assert fresh.layout_current()
    table.calls.clear()
    again = fresh.send_to_user(ANA, BO, "after the migration")
    assert again.message.message_group_uuid == old, "through the pair's alias header"
    assert table.calls["query"] == 0, "no search of a partition on a migrated table"


def test_a_conversation_a_week5_writer_starts_after_the_migration_is_served(store, table):
    """Issue 26, item 5: teams move backends gradually, so the week-5 backend may still write to a
    migrated table. Its new conversation has no header; the stream Lambda, meeting its first
    message, gives it one (and the pair its alias), so this API serves it: both participants read
    it, a first message by handle goes into it, and the API's own hot path reads nothing more."""
    assert store.layout_current()
    old = week5_conversation(table, CY, BO, "written by week 5, after the migration")
    table.calls.clear()
    assert deliver(table) == {"batchItemFailures": []}
    assert table.get(layout.header_key(old))["participants"] == sorted([CY["uuid"], BO["uuid"]])
    fresh = ConversationStore(table)  # another process, knowing nothing yet
    assert fresh.is_participant(old, BO["uuid"]) and not fresh.is_participant(old, ANA["uuid"])
    sent = fresh.send_to_user(BO, CY, "this API answers")
    assert sent.message.message_group_uuid == old, "through the pair's alias: no second conversation"
    assert [m.text for m in fresh.messages(old, 10).items][0] == "this API answers"


# -- setting up a table on a store that lacks a capability (issue 33, item 14) -------------------

class StoreWithoutStreams(MemoryTable):
    """As dynalite is: CreateTable drops the stream, UpdateTable refuses one, no TTL operations."""

    def create_table(self, definition):
        return super().create_table({k: v for k, v in definition.items() if k != "StreamSpecification"})

    def update_table(self, **changes):
        if "StreamSpecification" in changes:
            from lib.ddb import StoreError
            raise StoreError("ValidationException", "StreamSpecification is not supported", "UpdateTable")
        super().update_table(**changes)

    def ttl(self):
        from lib.ddb import StoreError
        raise StoreError("UnknownOperationException", "", "DescribeTimeToLive")


def test_a_store_without_streams_or_ttl_gets_a_line_for_each_and_a_table_that_serves():
    table = StoreWithoutStreams()
    store = ConversationStore(table)
    done = table_setup.set_up_table(store.table)
    assert any(line.startswith("no stream (UpdateTable refused: ValidationException") and
               "conversation rows will not follow new messages" in line for line in done), done
    assert any(line.startswith("no time to live (DescribeTimeToLive refused") and "will not expire" in line
               for line in done), done
    assert "wrote the layout mark (the table is in the current layout)" in done
    assert week5.layout_version(table) == layout.LAYOUT_VERSION
    again = table_setup.set_up_table(store.table)  # the same two lines, and nothing else to do
    assert len(again) == 2 and all(line.startswith("no ") for line in again)


def test_an_empty_table_is_marked_before_a_step_that_fails_so_it_is_never_taken_for_a_week5_one():
    class IndexRefused(MemoryTable):
        def update_table(self, **changes):
            from lib.ddb import StoreError
            raise StoreError("LimitExceededException", "too many updates", "UpdateTable")

    table = IndexRefused()
    table.create_table({"TableName": table.table, "KeySchema": []})  # made by hand: no index yet
    with pytest.raises(Exception, match="UpdateTable refused"):
        table_setup.set_up_table(table)
    assert week5.layout_version(table) == layout.LAYOUT_VERSION


# -- the stream's batches ---------------------------------------------------------------------------
def test_a_batch_moves_each_group_once_to_its_newest_message_and_counts_them_all(store, table):
    group = store.send_to_user(ANA, BO, "first").message.message_group_uuid
    deliver(table)
    for n in range(4):
        store.send_to_group(ANA, group, f"m{n}")
    records = table.stream_records()
    before = table.calls.copy()
    assert apply_batch(records, RowMover(table)) == {"batchItemFailures": []}
    spent = table.calls - before
    assert spent == {"get_item": 1, "query": 1, "put_item": 2, "delete_item": 2}, (
        "the header, one query of the index, and one put and one delete per participant: once for four messages")
    [row] = list(table.query_items(layout.group_pk(BO["uuid"])))
    assert (row["message"], row["unread_count"]) == ("m3", 5)


def test_a_group_begun_with_too_little_time_left_is_handed_back_from_its_first_record(store, table):
    store.send_to_user(ANA, BO, "hello")
    store.send_to_user(CY, BO, "hi")
    records = table.stream_records()
    answer = apply_batch(records, RowMover(table), remaining_ms=lambda: 1)
    first_message = next(r for r in records if r["dynamodb"]["NewImage"]["pk"]["S"].startswith("MSG#"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": first_message["dynamodb"]["SequenceNumber"]}]}
    assert apply_batch(records, RowMover(table)) == {"batchItemFailures": []}  # Lambda's retry


def test_a_message_of_no_conversation_moves_nothing(table):
    stray, at = "6f1c3c55-0000-4000-8000-00000000f00d", "2030-01-01T00:00:01.000000+00:00"
    table.put(layout.message_item(stray, ANA, "stray", at))
    assert RowMover(table).apply(NewMessage(stray, at, "stray", "m", ANA["uuid"])) == "no-rows"


def test_setting_the_table_up_again_finds_nothing_to_do(table):
    assert table_setup.set_up_table(table) == []
    assert table_setup.create_table(table) is False
