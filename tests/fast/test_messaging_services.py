"""The direct-message use cases (services/) over the in-memory table and users: patterns A to D,
read markers and unread counts, who may see what, and every refusal with its code. The same
behaviours end to end through HTTP are in tests/stack/test_api_*.py."""
from __future__ import annotations

from typing import Any

import pytest

from domain.errors import InvalidInput, MalformedRequest, NotFound, Unavailable
from services import validation
from services.create_message import CreateMessage
from services.message_groups import MessageGroups
from services.messages import Messages
from services.read_markers import MarkRead, UnreadSummary
from services.users_short import UsersShort
from tests.expect import refused


def send(world, sender: dict, body: dict, key: str | None = None) -> dict[str, Any]:
    return CreateMessage.run(world.parts.conversations, world.parts.users, world.parts.blocks, sender, body, key)


def read(world, caller: dict, group: str, limit: int = 20, cursor: str | None = None):
    return Messages.run(world.parts.conversations, world.parts.names, world.parts.cursors, caller, group, limit, cursor)


def listing(world, caller: dict, limit: int = 20, cursor: str | None = None):
    return MessageGroups.run(world.parts.conversations, world.parts.names, world.parts.cursors, caller, limit, cursor)


@pytest.fixture
def group(world, ana, bo) -> str:
    return send(world, ana, {"handle": "bo", "message": "hello bo"})["message_group_uuid"]


def stored_messages(world) -> list[dict]:
    return [i for i in world.table.scan_all() if i["pk"].startswith("MSG#")]


# -- patterns C and D: sending ----------------------------------------------------------------------
def test_a_first_message_by_handle_starts_the_conversation_and_names_it(world, ana, bo):
    sent = send(world, ana, {"handle": "bo", "message": "  hello bo  "})
    assert set(sent) == {"uuid", "display_name", "handle", "message", "created_at", "edited_at", "message_group_uuid"}
    assert (sent["message"], sent["handle"], sent["display_name"]) == ("hello bo", "ana", "Ana A")
    assert [m["message"] for m in read(world, bo, sent["message_group_uuid"])[0]] == ["hello bo"]


def test_a_second_message_by_handle_goes_into_the_same_conversation(world, ana, bo, group):
    again = send(world, bo, {"handle": "ANA", "message": "hi ana"})  # a handle in any case
    assert again["message_group_uuid"] == group
    assert [m["message"] for m in read(world, ana, group)[0]] == ["hello bo", "hi ana"]


def test_a_message_into_a_conversation_is_answered_without_its_group(world, ana, bo, group):
    sent = send(world, bo, {"message_group_uuid": group, "message": "back"})
    assert "message_group_uuid" not in sent and sent["handle"] == "bo"


@pytest.mark.parametrize("body, kind, code", [
    ({"handle": "nobody", "message": "hi"}, NotFound, "user_not_found"),
    ({"handle": "ana", "message": "hi"}, InvalidInput, "cannot_message_self"),
    ({"message": "hi"}, InvalidInput, "recipient_invalid"),
    ({"handle": "bo", "message_group_uuid": "6f1c3c55-0000-4000-8000-000000000000", "message": "hi"},
     InvalidInput, "recipient_invalid"),
    ({"handle": "bo", "message": ""}, InvalidInput, "message_blank"),
    ({"handle": "bo", "message": "   \n\t "}, InvalidInput, "message_blank"),
    ({"handle": "bo", "message": "\u200b\u2060\u3164"}, InvalidInput, "message_blank"),
    ({"handle": "bo", "message": "x" * 1025}, InvalidInput, "message_too_long"),
    ({"handle": "bo", "message": 42}, InvalidInput, "message_invalid"),
    ({"handle": "bo", "message": "nul\x00"}, InvalidInput, "message_invalid"),
    ({"handle": "bo", "message": "half \ud800"}, InvalidInput, "message_invalid"),
    ({"handle": "bo/../x", "message": "hi"}, InvalidInput, "handle_invalid"),
    ({"handle": "..", "message": "hi"}, InvalidInput, "handle_invalid"),
    ({"message_group_uuid": "not-a-uuid", "message": "hi"}, InvalidInput, "message_group_uuid_invalid"),
    ({"message_group_uuid": "6f1c3c55000040008000000000000000", "message": "hi"}, InvalidInput,
     "message_group_uuid_invalid"),
    ({"message_group_uuid": 12, "message": "hi"}, InvalidInput, "message_group_uuid_invalid"),
])
def test_each_bad_send_is_refused_with_its_code_and_stores_nothing(world, ana, bo, body, kind, code):
    refused(lambda: send(world, ana, body), kind, code)
    assert stored_messages(world) == []


@pytest.mark.parametrize("body", [[], "text", 7, None])
def test_a_body_that_is_not_an_object_is_body_invalid(world, ana, body):
    refused(lambda: send(world, ana, body), MalformedRequest, "body_invalid")


def test_the_longest_message_is_kept_whole(world, ana, bo):
    sent = send(world, ana, {"handle": "bo", "message": "é" * validation.DIRECT_MESSAGE_MAX_LENGTH})
    assert len(sent["message"]) == 1024


def test_nobody_posts_into_a_conversation_they_are_not_in(world, ana, bo, group):
    eve = world.person("eve")
    refused(lambda: send(world, eve, {"message_group_uuid": group, "message": "let me in"}),
            NotFound, "message_group_not_found")
    assert [m["message"] for m in stored_messages(world)] == ["hello bo"]


def test_a_retry_with_the_same_idempotency_key_answers_the_first_message(world, ana, bo, group):
    body = {"message_group_uuid": group, "message": "once"}
    first, again = send(world, ana, body, "key-1"), send(world, ana, body, "key-1")
    assert first == again
    assert [m["message"] for m in stored_messages(world)].count("once") == 1


def test_an_idempotency_key_reused_for_another_request_is_refused(world, ana, bo, group):
    send(world, ana, {"message_group_uuid": group, "message": "once"}, "key-2")
    refused(lambda: send(world, ana, {"message_group_uuid": group, "message": "twice"}, "key-2"),
            InvalidInput, "idempotency_key_reused")


def test_idempotency_keys_are_each_users_own(world, ana, bo, group):
    body = {"message_group_uuid": group, "message": "same words"}
    assert send(world, ana, body, "shared")["uuid"] != send(world, bo, body, "shared")["uuid"]


def test_a_first_message_whose_response_was_lost_is_stored_once(world, ana, bo):
    world.table.lose_responses(4)  # the header, the record, the message and a row: each sent twice
    sent = send(world, ana, {"handle": "bo", "message": "through the loss"}, "lossy")
    assert [m["message_uuid"] for m in stored_messages(world)] == [sent["uuid"]]


# -- pattern A: a conversation's messages -------------------------------------------------------------
def test_messages_are_shown_oldest_first_in_pages_that_miss_and_repeat_nothing(world, ana, bo, group):
    for i in range(6):
        send(world, ana if i % 2 else bo, {"message_group_uuid": group, "message": f"m{i}"})
    seen, cursor = [], None
    while True:
        page, cursor = read(world, bo, group, 3, cursor)
        assert [m["created_at"] for m in page] == sorted(m["created_at"] for m in page)
        seen = [m["message"] for m in page] + seen
        if cursor is None:
            break
    assert seen == ["hello bo"] + [f"m{i}" for i in range(6)]


@pytest.mark.parametrize("who", ["stranger", "nowhere"])
def test_not_yours_and_does_not_exist_are_one_answer(world, ana, bo, group, who):
    eve = world.person("eve")
    target = group if who == "stranger" else "6f1c3c55-0000-4000-8000-00000000dead"
    refused(lambda: read(world, eve, target), NotFound, "message_group_not_found")


@pytest.mark.parametrize("path", ["x", "", "6f1c3c55000040008000000000000000", "../etc", "{6f1c3c55-0000-4000-8000-000000000000}"])
def test_a_group_that_is_not_a_uuid_in_a_path_is_not_found(world, ana, path):
    refused(lambda: read(world, ana, path), NotFound, "message_group_not_found")


def test_a_cursor_serves_only_whom_and_what_it_was_made_for(world, ana, bo, group):
    for i in range(3):
        send(world, ana, {"message_group_uuid": group, "message": f"m{i}"})
    _, cursor = read(world, ana, group, 1)
    assert cursor is not None
    refused(lambda: read(world, bo, group, 1, cursor), MalformedRequest, "cursor_invalid")  # another caller
    refused(lambda: listing(world, ana, 1, cursor), MalformedRequest, "cursor_invalid")  # another list


@pytest.mark.parametrize("cursor", ["", "x" * 600, "not.a.cursor", "WyJBIiwgIngiXQ", "é"])
def test_forged_and_malformed_cursors_are_refused(world, ana, group, cursor):
    refused(lambda: read(world, ana, group, 1, cursor), MalformedRequest, "cursor_invalid")


# -- pattern B: the caller's conversations -------------------------------------------------------------
def test_conversations_are_listed_most_recent_first_naming_the_other(world, ana, bo, group):
    cy = world.person("cy", "Cy C")
    send(world, cy, {"handle": "ana", "message": "from cy"})
    conversations, cursor = listing(world, ana)
    assert cursor is None
    assert [(c["handle"], c["display_name"], c["message"]) for c in conversations] == [
        ("cy", "Cy C", "from cy"), ("bo", "Bo B", "hello bo")]
    assert set(conversations[0]) == {"uuid", "display_name", "handle", "message", "created_at", "unread_count"}


def test_the_list_follows_new_messages_once_the_stream_moved_the_rows(world, ana, bo, group):
    cy = world.person("cy")
    send(world, cy, {"handle": "ana", "message": "from cy"})
    send(world, bo, {"message_group_uuid": group, "message": "latest from bo"})
    world.settle()
    first = listing(world, ana)[0][0]
    assert (first["uuid"], first["message"]) == (group, "latest from bo")


def test_the_list_pages_end_exactly_at_the_last_conversation(world, ana):
    for n in range(5):
        other = world.person(f"p{n}")
        send(world, other, {"handle": "ana", "message": f"from p{n}"})
    seen, cursor = [], None
    for _ in range(5):
        page, cursor = listing(world, ana, 2, cursor)
        seen += [c["handle"] for c in page]
        if cursor is None:
            break
    assert seen == [f"p{n}" for n in reversed(range(5))]


# -- read markers and unread counts ------------------------------------------------------------------
def test_unread_messages_are_counted_and_marking_read_clears_them(world, ana, bo, group):
    for i in range(3):
        send(world, ana, {"message_group_uuid": group, "message": f"m{i}"})
    world.settle()
    conversations = UnreadSummary.run(world.parts.conversations, bo)
    assert conversations == {"conversations": 1, "messages": 4}
    assert listing(world, bo)[0][0]["unread_count"] == 4
    assert listing(world, ana)[0][0]["unread_count"] == 0  # sending marks read
    assert MarkRead.run(world.parts.conversations, bo, group, None) == {"unread_count": 0}
    world.settle()
    assert UnreadSummary.run(world.parts.conversations, bo) == {"conversations": 0, "messages": 0}


def test_a_marker_moves_to_a_message_and_never_back(world, ana, bo, group):
    sent = [send(world, ana, {"message_group_uuid": group, "message": f"m{i}"}) for i in range(3)]
    world.settle()
    assert MarkRead.run(world.parts.conversations, bo, group, {"up_to": sent[0]["created_at"]}) == {"unread_count": 2}
    assert MarkRead.run(world.parts.conversations, bo, group, {"up_to": sent[1]["created_at"]}) == {"unread_count": 1}
    # an older marker changes nothing
    assert MarkRead.run(world.parts.conversations, bo, group, {"up_to": sent[0]["created_at"]}) == {"unread_count": 1}


def test_a_marker_in_the_future_is_clamped_to_the_newest_message(world, ana, bo, group):
    world.settle()
    assert MarkRead.run(world.parts.conversations, bo, group, {"up_to": "9999-12-31T23:59:59+00:00"}) == {"unread_count": 0}
    send(world, ana, {"message_group_uuid": group, "message": "after the far marker"})
    world.settle()
    assert listing(world, bo)[0][0]["unread_count"] == 1, "a far-future marker would have muted this"


@pytest.mark.parametrize("up_to, code", [
    ("yesterday", "up_to_invalid"), ("2030-01-01T00:00:00", "up_to_invalid"), (5, "up_to_invalid"),
    ("0001-01-01T00:00:00+01:00", "up_to_invalid"),
])
def test_a_bad_marker_is_refused_with_its_code(world, bo, group, up_to, code):
    refused(lambda: MarkRead.run(world.parts.conversations, bo, group, {"up_to": up_to}), InvalidInput, code)


def test_marking_read_before_the_rows_exist_asks_to_try_again(world, ana, bo, group):
    for item in list(world.table.scan_all()):  # as if the API stopped before writing the rows
        if item["pk"].startswith("GRP#"):
            world.table.delete_if({"pk": item["pk"], "sk": item["sk"]}, {})
    refused(lambda: MarkRead.run(world.parts.conversations, bo, group, None), Unavailable, "conversation_settling")
    world.settle()  # the stream Lambda makes them from the header
    assert MarkRead.run(world.parts.conversations, bo, group, None) == {"unread_count": 0}


def test_a_stranger_marks_nothing(world, ana, bo, group):
    eve = world.person("eve")
    refused(lambda: MarkRead.run(world.parts.conversations, eve, group, None), NotFound, "message_group_not_found")


@pytest.mark.parametrize("body", [[], "now", 3])
def test_a_mark_body_that_is_not_an_object_is_body_invalid(world, bo, group, body):
    refused(lambda: MarkRead.run(world.parts.conversations, bo, group, body), MalformedRequest, "body_invalid")


def test_counts_stop_at_the_cap(world, ana, bo, group):
    for i in range(120):
        send(world, ana, {"message_group_uuid": group, "message": f"m{i}"})
    world.settle()
    assert listing(world, bo)[0][0]["unread_count"] == 99
    assert UnreadSummary.run(world.parts.conversations, bo) == {"conversations": 1, "messages": 99}


# -- a user's card -------------------------------------------------------------------------------------
def test_a_users_card_is_found_by_handle_in_any_case(world, bo):
    assert UsersShort.run(world.parts.users, "BO") == {"uuid": bo["uuid"], "display_name": "Bo B", "handle": "bo"}


@pytest.mark.parametrize("handle", ["nobody", "..", "a b", "x" * 65, ""])
def test_an_unknown_or_impossible_handle_has_no_card(world, bo, handle):
    refused(lambda: UsersShort.run(world.parts.users, handle), NotFound, "user_not_found")


# -- query parameters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "101", "-1", "1.5", "²", "1e3", " 5", "5\n", "99999999999"])
def test_a_bad_limit_is_limit_invalid(value):
    refused(lambda: validation.limit(value), MalformedRequest, "limit_invalid")


@pytest.mark.parametrize("value, expected", [(None, 20), ("1", 1), ("100", 100), ("007", 7)])
def test_a_good_limit_is_read(value, expected):
    assert validation.limit(value) == expected


@pytest.mark.parametrize("value", ["", "with space", "é", "x" * 256, "tab\t"])
def test_a_bad_idempotency_key_is_refused(value):
    refused(lambda: validation.idempotency_key(value), MalformedRequest, "idempotency_key_invalid")


@pytest.mark.parametrize("value, expected", [
    ("2030-01-01T00:00:00+00:00", "2030-01-01T00:00:00+00:00"),
    ("2030-01-01T02:00:00.5+02:00", "2030-01-01T00:00:00.500000+00:00"),
])
def test_a_marker_time_is_read_in_any_zone_as_utc(value, expected):
    from datetime import datetime
    assert validation.message_time(value) == datetime.fromisoformat(expected)


@pytest.mark.parametrize("value", ["6F1C3C55-0000-4000-8000-000000000000", "6f1c3c55-0000-4000-8000-000000000000"])
def test_a_uuid_in_a_body_is_read_in_its_canonical_form(value):
    assert validation.canonical_uuid(value) == "6f1c3c55-0000-4000-8000-000000000000"
