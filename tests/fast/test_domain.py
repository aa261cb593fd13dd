"""The domain's rules one by one (domain/): what counts as unread and how far, which live events a
change makes, the JSON the contract gives, the time format and the cursors. Pure: no table, no
database."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple

import pytest

from domain import live_events, times, unread
from domain.contract import group_json, message_json
from domain.conversations import Conversation, Message
from domain.cursors import Cursors
from domain.errors import MalformedRequest

T = [f"2030-01-01T00:00:0{i}.000000+00:00" for i in range(10)]


class Sent(NamedTuple):
    sk: str
    sender: str


# -- unread -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("count, shown", [(-3, 0), (0, 0), (5, 5), (99, 99), (100, 99), (10_000, 99)])
def test_a_count_is_kept_and_shown_between_zero_and_the_cap(count, shown):
    assert unread.capped(count) == shown


def test_only_the_others_messages_after_the_marker_count():
    messages = [(T[1], "me"), (T[2], "you"), (T[3], "you"), (T[4], "me"), (T[5], "you")]
    assert unread.count(messages, "me", T[2]) == 2
    assert unread.count(messages, "me", "") == 3
    assert unread.count(messages, "you", T[1]) == 1


def test_counting_stops_at_the_cap():
    many = ((f"2030-01-01T00:{m:02d}:{s:02d}.000000+00:00", "you") for m in range(60) for s in range(60))
    assert unread.count(many, "me", "") == unread.UNREAD_CAP


def test_the_others_new_messages_add_to_the_count():
    seen = unread.Seen(last=T[2], read_up_to=T[1], unread=1)
    assert unread.after_batch(seen, [Sent(T[3], "you"), Sent(T[4], "you")], "me") == (T[1], 3)


def test_sending_marks_read_up_to_ones_own_message():
    seen = unread.Seen(last=T[2], read_up_to=T[1], unread=1)
    assert unread.after_batch(seen, [Sent(T[3], "you"), Sent(T[4], "me")], "me") == (T[4], 0)
    assert unread.after_batch(seen, [Sent(T[3], "me"), Sent(T[4], "you")], "me") == (T[3], 1)


def test_a_late_message_older_than_the_row_cannot_be_counted_from_the_batch():
    seen = unread.Seen(last=T[5], read_up_to=T[1], unread=2)
    assert unread.after_batch(seen, [Sent(T[3], "you")], "me") == (T[1], None)


def test_a_marker_moved_part_way_needs_a_count_from_the_messages():
    seen = unread.Seen(last=T[5], read_up_to=T[1], unread=4)
    assert unread.after_batch(seen, [Sent(T[3], "me")], "me") == (T[3], None)


def test_a_first_row_starts_from_nothing():
    assert unread.after_batch(None, [Sent(T[1], "you")], "me") == ("", 1)
    assert unread.after_batch(None, [Sent(T[1], "me")], "me") == (T[1], 0)


def test_the_count_from_a_batch_stops_at_the_cap_too():
    seen = unread.Seen(last=T[1], read_up_to="", unread=98)
    assert unread.after_batch(seen, [Sent(T[2], "you"), Sent(T[3], "you")], "me") == ("", 99)


# -- live events ------------------------------------------------------------------------------------
MESSAGE = Message("m-1", "g-1", "Ana A", "ana", "hi", T[1])
CONVERSATION = Conversation("g-1", "Bo B", "bo", "hi", T[1], 2)


def test_a_message_is_one_event_per_participant_keyed_by_the_message():
    events = live_events.of_message(MESSAGE, ["u-a", "u-b"])
    assert [(e.user_uuid, e.kind, e.key) for e in events] == [("u-a", "message", "message:m-1"),
                                                              ("u-b", "message", "message:m-1")]
    assert events[0].data == {**message_json(MESSAGE), "message_group_uuid": "g-1"}


def test_a_conversation_row_is_its_owners_event_keyed_by_what_it_shows():
    [only] = live_events.of_conversation("u-a", CONVERSATION)
    assert (only.user_uuid, only.kind, only.data) == ("u-a", "conversation", group_json(CONVERSATION))
    assert only.key == f"conversation:g-1:{T[1]}:2"
    again = live_events.of_conversation("u-a", CONVERSATION._replace(unread_count=0))
    assert again[0].key != only.key, "a changed count is a new event"


def test_a_row_with_a_marker_is_also_a_read_event():
    events = live_events.of_conversation("u-a", CONVERSATION, read_up_to=T[0])
    assert [e.kind for e in events] == ["conversation", "read"]
    assert events[1].data == {"message_group_uuid": "g-1", "up_to": T[0], "unread_count": 2}
    assert events[1].key == f"read:g-1:{T[0]}"


# -- the contract's JSON --------------------------------------------------------------------------------
def test_a_message_and_a_conversation_as_the_contract_gives_them():
    assert message_json(MESSAGE) == {"uuid": "m-1", "display_name": "Ana A", "handle": "ana", "message": "hi",
                                     "created_at": T[1], "edited_at": None}
    assert group_json(CONVERSATION) == {"uuid": "g-1", "display_name": "Bo B", "handle": "bo", "message": "hi",
                                        "created_at": T[1], "unread_count": 2}


# -- times ------------------------------------------------------------------------------------------
def test_times_are_utc_with_microseconds_whatever_their_zone():
    from datetime import timedelta
    moment = datetime(2030, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert times.iso(moment) == "2030-01-01T00:00:00.000000+00:00"
    assert times.later(T[1], 1) == "2030-01-01T00:00:01.000001+00:00" and times.later(T[1], 0) == T[1]
    assert times.now_iso() > "2024" and times.now_iso().endswith("+00:00") and times.epoch_now() > 1_700_000_000


# -- cursors ------------------------------------------------------------------------------------------
def test_a_cursor_gives_back_its_position_for_its_scope_only():
    cursors = Cursors(b"secret")
    cursor = cursors.encode("A:me:g", T[3])
    assert cursors.decode("A:me:g", cursor) == T[3]
    for scope in ("A:you:g", "B:me", ""):
        with pytest.raises(MalformedRequest):
            cursors.decode(scope, cursor)


def test_a_cursor_signed_with_another_secret_or_altered_is_refused():
    cursor = Cursors(b"secret").encode("s", T[3])
    for forged in (Cursors(b"other").encode("s", T[3]), cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")):
        with pytest.raises(MalformedRequest) as refused:
            Cursors(b"secret").decode("s", forged)
        assert refused.value.codes == ["cursor_invalid"]


def test_cursors_are_itsdangerous_own_and_those_made_before_still_decode():
    """The cursor's signer is made once and its key derived once (domain/cursors.py): the tokens
    are the ones a plain URLSafeSerializer of the same secret and salt makes, both ways."""
    from itsdangerous import URLSafeSerializer

    from domain.cursors import Cursors

    plain = URLSafeSerializer(b"a secret", salt="cruddur.cursor")
    cursors = Cursors(b"a secret")
    before = plain.dumps(["scope", "2026-01-01T00:00:00.000000+00:00"])
    assert cursors.decode("scope", before) == "2026-01-01T00:00:00.000000+00:00"
    assert cursors.encode("scope", "2026-01-01T00:00:00.000000+00:00") == before
    assert plain.loads(cursors.encode("other", "x")) == ["other", "x"]
