"""Deleting a message (../shared/CONTRACT.md, "Editing and deleting a message"), over the in-memory
table and event log: who may, what a non-participant learns, pages that keep their size, rows that
fall back, unread counts, the idempotency record, a deletion racing an edit or the row mover, and
records duplicated, reordered and late. Through HTTP: tests/stack/test_delete_messages.py."""
from __future__ import annotations

import json

import pytest

from domain import message_ids, times
from domain.errors import Gone, NotFound, NotPermitted
from lib.conversations import layout
from lib.conversations.events import events_of
from lib.conversations.participants import Participants
from lib.conversations.stream import RowMover, apply_batch
from services.create_message import CreateMessage
from services.delete_message import DeleteMessage
from services.edit_message import EditMessage
from services.message_groups import MessageGroups
from services.messages import Messages
from services.read_markers import MarkRead
from tests.fakes import MemoryEventLog


def send(world, sender, body, key=None):
    return CreateMessage.run(world.parts.conversations, world.parts.users, world.parts.blocks, sender, body, key)


def delete(world, caller, group, message):
    return DeleteMessage.run(world.parts.conversations, caller, group, message)


def edit(world, caller, group, message, text):
    return EditMessage.run(world.parts.conversations, caller, group, message, {"message": text})


def page(world, reader, group, limit=50, cursor=None):
    return Messages.run(world.parts.conversations, world.parts.names, world.parts.cursors, reader, group, limit, cursor)


def texts(world, reader, group):
    """The conversation's texts as pattern A gives them: oldest first."""
    return [m["message"] for m in page(world, reader, group)[0]]


def rows(world, reader):
    listed, _ = MessageGroups.run(world.parts.conversations, world.parts.names, world.parts.cursors, reader, 20, None)
    return [(g["message"], g["unread_count"]) for g in listed]


@pytest.fixture
def chat(world, ana, bo):
    """ana and bo: three messages, the last one ana's, all settled (rows written)."""
    first = send(world, ana, {"handle": "bo", "message": "one"})
    group = first["message_group_uuid"]
    second = send(world, bo, {"message_group_uuid": group, "message": "two"})
    third = send(world, ana, {"message_group_uuid": group, "message": "three"})
    world.settle()
    return group, [first["uuid"], second["uuid"], third["uuid"]]


def test_the_sender_takes_a_message_back_and_it_leaves_the_conversation(world, ana, bo, chat):
    group, (_, _, third) = chat
    answer = delete(world, ana, group, third)
    assert answer["uuid"] == third and answer["message_group_uuid"] == group and answer["deleted_at"]
    assert delete(world, ana, group, third) == answer, "deleting it again answers the same"
    assert texts(world, ana, group) == texts(world, bo, group) == ["one", "two"]
    item = world.table.get(layout.message_key(group, message_ids.created_at_of(third)))
    assert item["message"] == "" and item[layout.DELETED] == answer["deleted_at"], "the item keeps no text"


def test_only_its_sender_and_a_stranger_learns_nothing(world, ana, bo, chat):
    group, (first, second, _) = chat
    with pytest.raises(NotPermitted) as other:
        delete(world, bo, group, first)
    assert other.value.codes == ["not_sender"]
    cy = world.person("cy")
    for caller, target in ((cy, first), (ana, message_ids.new(times.now_iso())), (ana, "nope")):
        with pytest.raises(NotFound) as missing:
            delete(world, caller, group, target)
        assert missing.value.codes == ["message_not_found"]
    delete(world, bo, group, second)
    for caller, change in ((bo, lambda: edit(world, bo, group, second, "back")),
                           (ana, lambda: delete(world, ana, group, second))):
        with pytest.raises(NotFound):  # deleted: gone to an edit, and to the other participant
            change()


def test_a_stranger_pays_what_a_missing_message_costs(world, ana, chat):
    group, (first, _, _) = chat
    cy = world.person("cy")

    def reads(target):
        before = dict(world.table.calls)
        with pytest.raises(NotFound):
            delete(world, cy, group, target)
        return {k: v - before.get(k, 0) for k, v in world.table.calls.items() if v != before.get(k, 0)}

    world.parts.conversations.participants.groups.clear()
    assert reads(first) == reads(message_ids.new(times.now_iso()))


def test_a_page_keeps_its_size_and_cursors_made_before_stay_valid(world, ana, bo):
    group = send(world, ana, {"handle": "bo", "message": "m0"})["message_group_uuid"]
    sent = [send(world, ana, {"message_group_uuid": group, "message": f"m{i}"})["uuid"] for i in range(1, 12)]
    first_page, cursor = page(world, bo, group, limit=4)
    assert [m["message"] for m in first_page] == ["m8", "m9", "m10", "m11"] and cursor
    for gone in (sent[6], sent[5], sent[4], sent[2]):  # m7, m6, m5 and m3: the next page's
        delete(world, ana, group, gone)
    second_page, cursor = page(world, bo, group, limit=4, cursor=cursor)
    assert [m["message"] for m in second_page] == ["m0", "m1", "m2", "m4"]
    assert cursor is None


def test_a_long_run_of_deleted_messages_costs_a_bounded_number_of_reads(world, ana, bo):
    from lib.conversations import paging

    group = send(world, ana, {"handle": "bo", "message": "the first"})["message_group_uuid"]
    for _ in range(paging.MAX_READS * paging.FILL_READ + 10):
        delete(world, ana, group, send(world, ana, {"message_group_uuid": group, "message": "gone"})["uuid"])
    before = world.table.calls["query"]
    shown, cursor = page(world, bo, group, limit=5)
    assert world.table.calls["query"] - before == paging.MAX_READS
    assert shown == [] and cursor, "a shorter page, and a cursor where reading stopped"
    rest, end = page(world, bo, group, limit=5, cursor=cursor)
    assert [m["message"] for m in rest] == ["the first"] and end is None


def test_rows_fall_back_to_the_last_message_left_and_follow_its_edits(world, ana, bo, chat):
    group, (first, second, third) = chat
    delete(world, ana, group, third)
    world.settle()
    assert rows(world, ana)[0][0] == rows(world, bo)[0][0] == "two"
    edit(world, bo, group, second, "two, edited")
    world.settle()
    assert rows(world, ana)[0][0] == rows(world, bo)[0][0] == "two, edited"
    delete(world, bo, group, second)
    delete(world, ana, group, first)
    world.settle()
    assert rows(world, ana)[0][0] == rows(world, bo)[0][0] == ""
    assert [r[layout.SHOWN] for r in world.table.items.values() if layout.is_group_row(r)] == ["", ""]


def test_a_deleted_unread_message_stops_counting(world, ana, bo, chat):
    group, _ = chat
    mine = [send(world, bo, {"message_group_uuid": group, "message": f"unread {i}"})["uuid"] for i in range(3)]
    world.settle()
    assert rows(world, ana) == [("unread 2", 3)]
    delete(world, bo, group, mine[0])
    world.settle()
    assert rows(world, ana) == [("unread 2", 2)]
    MarkRead.run(world.parts.conversations, ana, group, None)
    send(world, bo, {"message_group_uuid": group, "message": "new"})
    world.settle()
    delete(world, bo, group, mine[1])  # read already: the count stays
    world.settle()
    assert rows(world, ana) == [("new", 1)]


def test_a_retried_send_of_a_deleted_message_is_gone_and_its_fingerprint_too(world, ana, bo, chat):
    group, _ = chat
    body = {"message_group_uuid": group, "message": "a secret"}
    sent = send(world, ana, body, "key-1")
    delete(world, ana, group, sent["uuid"])
    held = world.table.get(layout.idempotency_key(ana["uuid"], "key-1"))
    assert "fingerprint" not in held and held[layout.DELETED]
    before = len(world.table.items)
    for retried in (body, {**body, "message": "another"}):
        with pytest.raises(Gone) as gone:
            send(world, ana, retried, "key-1")
        assert gone.value.codes == ["message_deleted"]
    assert len(world.table.items) == before, "nothing stored"


def test_a_retry_finds_the_tombstone_when_the_deletion_stopped_before_the_record(world, ana, chat):
    group, _ = chat
    body = {"message_group_uuid": group, "message": "half deleted"}
    sent = send(world, ana, body, "key-2")
    world.table.fail_writes(1, when=lambda op, key: key["pk"].startswith(layout.IDEMPOTENCY_PREFIX))
    with pytest.raises(Exception):
        delete(world, ana, group, sent["uuid"])
    with pytest.raises(Gone):
        send(world, ana, body, "key-2")
    first = delete(world, ana, group, sent["uuid"])  # the next deletion completes it
    assert "fingerprint" not in world.table.get(layout.idempotency_key(ana["uuid"], "key-2"))
    assert first["deleted_at"]


def test_a_deletion_whose_answer_was_lost_answers_the_same(world, ana, chat):
    group, (_, _, third) = chat
    world.table.lose_responses(1)
    answer = delete(world, ana, group, third)
    assert answer == delete(world, ana, group, third)


def test_a_deletion_beats_an_edit_racing_it(world, ana, bo, chat):
    group, (_, _, third) = chat
    world.table.before_write(lambda: delete(world, ana, group, third))
    with pytest.raises(NotFound):  # the edit read the message, the deletion landed first
        edit(world, ana, group, third, "too late")
    world.settle()
    assert texts(world, bo, group) == ["one", "two"] and rows(world, bo)[0][0] == "two"


def test_records_late_twice_or_out_of_order_end_on_the_deletion(world, ana, bo, chat):
    group, (_, _, third) = chat
    edit(world, ana, group, third, "edited first")
    edited = world.table.stream_records()
    delete(world, ana, group, third)
    deleted = world.table.stream_records()
    mover = RowMover(world.table)
    assert apply_batch(deleted + deleted, mover) == {"batchItemFailures": []}
    assert apply_batch(edited, mover) == {"batchItemFailures": []}  # the edit's record, late
    assert apply_batch(edited + deleted, mover) == {"batchItemFailures": []}  # a batch replayed
    assert rows(world, ana)[0][0] == rows(world, bo)[0][0] == "two"


def test_a_count_lowered_by_a_deletion_is_not_overwritten_by_the_row_mover(world, ana, bo, chat):
    group, _ = chat
    older = send(world, bo, {"message_group_uuid": group, "message": "unread"})["uuid"]
    world.settle()
    send(world, bo, {"message_group_uuid": group, "message": "newer"})
    moved = world.table.stream_records()
    delete(world, bo, group, older)
    deletion = world.table.stream_records()
    # The row mover reads the rows, then the deletion is applied before its first write.
    world.table.before_write(lambda: apply_batch(deletion, RowMover(world.table)))
    assert apply_batch(moved, RowMover(world.table)) == {"batchItemFailures": []}
    assert rows(world, ana) == [("newer", 1)]


def test_a_deletion_while_the_index_lags_still_reaches_the_rows(world, ana, bo, chat):
    group, (_, _, third) = chat
    world.table.freeze_index()
    delete(world, ana, group, third)
    world.settle()
    world.table.catch_up_index()
    assert rows(world, ana)[0][0] == rows(world, bo)[0][0] == "two"


# -- the live-event log ------------------------------------------------------------------------
def logged(log, user):
    return [(kind, json.loads(data) if data else None) for _, kind, data, *_ in log.events[user["uuid"]]]


def test_the_text_leaves_the_log_and_a_late_record_brings_none_back(world, ana, bo):
    log = MemoryEventLog()
    participants = Participants(world.table).both
    sent = send(world, ana, {"handle": "bo", "message": "take this back"})
    group = sent["message_group_uuid"]
    records = world.table.stream_records()
    for record in records:
        log.append(events_of(record, participants))
    delete(world, ana, group, sent["uuid"])
    deletion = world.table.stream_records()
    assert apply_batch(deletion, RowMover(world.table)) == {"batchItemFailures": []}
    changes = deletion + world.table.stream_records()
    for record in changes + records:  # the deletion and the rows' changes, then the first records again, late
        log.append(events_of(record, participants))
    for user in (ana, bo):
        events = logged(log, user)
        assert "take this back" not in json.dumps(events)
        assert ("message_deleted", {"message_group_uuid": group, "uuid": sent["uuid"],
                                    "deleted_at": log_deleted_at(events)}) in events
        assert [k for k, d in events if d is None and k == "message"] == ["message"], "erased, number kept"
    assert [d["message"] for k, d in logged(log, bo) if k == "conversation" and d] == [""]


def log_deleted_at(events):
    return next(d["deleted_at"] for k, d in events if k == "message_deleted")


def test_a_row_holding_an_empty_read_marker_still_takes_a_deletion(world, ana, bo):
    """Rows written before this code could hold read_up_to = "" (a count settled before any
    marker): a write that expects the row as read must expect exactly that, or it never lands."""
    group = send(world, bo, {"handle": "ana", "message": "hi"})["message_group_uuid"]
    unread = send(world, bo, {"message_group_uuid": group, "message": "unread"})["uuid"]
    world.settle()
    [row] = [r for r in world.table.items.values() if r["pk"] == layout.group_pk(ana["uuid"])]
    world.table.put({**row, "read_up_to": ""})
    delete(world, bo, group, unread)
    world.settle()
    assert rows(world, ana) == [("hi", 1)]
