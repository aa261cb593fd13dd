"""Editing a message (../shared/CONTRACT.md, "Editing and deleting a message"), over the in-memory
table: who may, until when, what a non-participant learns (nothing, at the same cost), and edits
racing each other or a lost response. Rows and live events of an edit: not yet (issue 36)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from domain import message_ids, times
from domain.errors import Conflict, InvalidInput, NotFound, NotPermitted
from lib.conversations import layout
from services.create_message import CreateMessage
from services.edit_message import EditMessage
from services.messages import Messages


def send(world, sender, body):
    return CreateMessage.run(world.parts.conversations, world.parts.users, world.parts.blocks, sender, body)


def edit(world, caller, group, message, text):
    return EditMessage.run(world.parts.conversations, caller, group, message, {"message": text})


def shown(world, reader, group):
    page, _ = Messages.run(world.parts.conversations, world.parts.names, world.parts.cursors, reader, group, 50, None)
    return [(m["message"], m["edited_at"]) for m in page]


@pytest.fixture
def sent(world, ana, bo):
    reply = send(world, ana, {"handle": "bo", "message": "see you friday"})
    return reply["message_group_uuid"], reply["uuid"]


def refused(code, *args):
    with pytest.raises((NotFound, NotPermitted, Conflict, InvalidInput)) as error:
        edit(*args)
    assert error.value.codes == [code]


def test_a_message_uuid_names_its_time_and_a_random_one_none():
    now = times.now_iso()
    assert message_ids.created_at_of(message_ids.new(now)) == now
    assert uuid.UUID(message_ids.new(now)).version == 7
    assert message_ids.created_at_of(str(uuid.uuid4())) is None and message_ids.created_at_of("nope") is None
    assert message_ids.new(now) != message_ids.new(now)  # 62 random bits each


def test_the_sender_corrects_a_message_and_both_see_it_with_when(world, ana, bo, sent):
    group, message = sent
    edited = edit(world, ana, group, message, "see you saturday")
    assert edited["message"] == "see you saturday" and edited["uuid"] == message and edited["edited_at"]
    assert shown(world, ana, group) == shown(world, bo, group) == [("see you saturday", edited["edited_at"])]
    again = edit(world, ana, group, message, "see you saturday")  # the same text: nothing changes
    assert again == edited


def test_only_the_sender_within_a_day_of_a_message_of_theirs(world, ana, bo, sent, monkeypatch):
    group, message = sent
    refused("not_sender", world, bo, group, message, "hijacked")
    world.person("cy")
    cy = world.parts.users.by_handle("cy")
    refused("message_not_found", world, cy, group, message, "not yours")
    refused("message_not_found", world, ana, group, message_ids.new(times.now_iso()), "no such message")
    refused("message_not_found", world, ana, group, "not-a-uuid", "no such message")
    refused("message_blank", world, ana, group, message, "   ")
    refused("message_too_long", world, ana, group, message, "x" * 1025)
    tomorrow = times.iso(datetime.fromisoformat(times.now_iso()) + timedelta(hours=24, seconds=1))
    monkeypatch.setattr(times, "now_iso", lambda: tomorrow)
    refused("edit_window_closed", world, ana, group, message, "too late")
    assert shown(world, ana, group) == [("see you friday", None)]


def test_a_stranger_learns_nothing_and_pays_what_a_missing_message_costs(world, ana, sent):
    group, message = sent
    world.person("cy")
    cy = world.parts.users.by_handle("cy")

    def reads(caller, target):
        before = dict(world.table.calls)
        with pytest.raises(NotFound):
            edit(world, caller, group, target, "x")
        return {k: v - before.get(k, 0) for k, v in world.table.calls.items() if v != before.get(k, 0)}

    world.parts.conversations.participants.groups.clear()  # nobody known: as a new process
    stranger = reads(cy, message)
    missing = reads(cy, message_ids.new(times.now_iso()))
    assert stranger == missing and stranger.get("get_item", 0) >= 2  # the message, the header


def test_two_edits_at_once_end_on_the_one_that_landed_last(world, ana, bo, sent):
    group, message = sent
    # while the first edit is on its way, another lands before it
    world.table.before_write(lambda: edit(world, ana, group, message, "the other edit"))
    first = edit(world, ana, group, message, "the first edit")
    assert first["message"] == "the first edit"
    [(text, edited_at)] = shown(world, bo, group)
    assert (text, edited_at) == ("the first edit", first["edited_at"])


def test_an_edit_whose_answer_was_lost_is_found_landed(world, ana, sent):
    group, message = sent
    world.table.lose_responses(1)
    edited = edit(world, ana, group, message, "said twice")
    assert shown(world, ana, group) == [("said twice", edited["edited_at"])]


def test_a_message_with_a_random_uuid_is_found_in_its_conversation(world, ana, bo, sent):
    group, _ = sent
    older = str(uuid.uuid4())  # as the week-5 backend, or this one before, named messages
    at = times.now_iso()
    world.table.put(layout.message_item(group, ana, "an older one", at, older))
    assert edit(world, ana, group, older, "found")["message"] == "found"


# -- the rows of an edited message (the stream Lambda's part) ------------------------------------
def rows(world, reader):
    from services.message_groups import MessageGroups

    page, _ = MessageGroups.run(world.parts.conversations, world.parts.names, world.parts.cursors, reader, 20, None)
    return [g["message"] for g in page]


def test_when_the_last_message_is_edited_both_rows_show_the_new_text(world, ana, bo, sent):
    group, message = sent
    world.settle()
    edit(world, ana, group, message, "see you saturday")
    world.settle()
    assert rows(world, ana) == rows(world, bo) == ["see you saturday"]


def test_an_edit_of_an_earlier_message_leaves_the_rows_on_the_last(world, ana, bo, sent):
    group, message = sent
    send(world, bo, {"message_group_uuid": group, "message": "friday works"})
    world.settle()
    edit(world, ana, group, message, "see you saturday")
    world.settle()
    assert rows(world, ana) == rows(world, bo) == ["friday works"]


def test_edits_delivered_late_or_twice_never_bring_an_older_text_back(world, ana, bo, sent):
    from lib.conversations.stream import RowMover, apply_batch

    group, message = sent
    world.settle()
    edit(world, ana, group, message, "second")
    first = world.table.stream_records()
    edit(world, ana, group, message, "third")
    second = world.table.stream_records()
    mover = RowMover(world.table)
    assert apply_batch(second, mover) == {"batchItemFailures": []}
    assert apply_batch(first + first, mover) == {"batchItemFailures": []}  # late, and twice
    assert rows(world, ana) == rows(world, bo) == ["third"]


def test_a_row_moved_to_a_new_message_takes_that_messages_edits(world, ana, bo, sent):
    group, message = sent
    world.settle()
    edit(world, ana, group, message, "edited late in the day")
    world.settle()
    newer = send(world, bo, {"message_group_uuid": group, "message": "tpyo"})
    world.settle()
    edit(world, bo, group, newer["uuid"], "typo")
    world.settle()
    assert rows(world, ana) == rows(world, bo) == ["typo"]
