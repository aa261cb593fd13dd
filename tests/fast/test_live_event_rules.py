"""Which live events a change of the table makes, and for whom (lib/conversations/events.py), and
how the stream writes them (routes/events.py). Fast: no store."""
from __future__ import annotations

import threading

import pytest

from lib.conversations import layout, table_setup
from lib.conversations.store import ConversationStore
from lib.conversations.events import events_of
from lib.conversations.participants import Participants
from lib.conversations.rows import IndexBehind
from lib.conversations.stream import RowMover, apply_batch
from lib.ddb import serialize
from lib.event_listener import EventHub
from routes.events import server_sent
from services.live_events import Comment, Event
from tests.memory_table import MemoryTable


ANDREW = {"uuid": "11111111-1111-4111-8111-111111111111", "display_name": "Andrew Brown", "handle": "andrewbrown"}
BAYKO = {"uuid": "22222222-2222-4222-8222-222222222222", "display_name": "Bayko", "handle": "bayko"}
GROUP = layout.group_uuid_for(ANDREW["uuid"], BAYKO["uuid"])
T1, T2 = "2026-12-03T10:00:00.000001+00:00", "2026-12-03T10:00:05.000002+00:00"


def record(name: str, item: dict) -> dict:
    return {"eventName": name, "eventID": "id", "dynamodb": {"NewImage": serialize(item), "SequenceNumber": "1"}}


def participants(group: str) -> list[str]:
    assert group == GROUP
    return [ANDREW["uuid"], BAYKO["uuid"]]


def test_a_new_message_is_a_message_event_for_each_participant_and_no_one_else():
    item = layout.message_item(GROUP, ANDREW, "hi", T1, "33333333-3333-4333-8333-333333333333")
    events = events_of(record("INSERT", item), participants)
    assert {e.user_uuid for e in events} == {ANDREW["uuid"], BAYKO["uuid"]}
    for event in events:
        assert event.kind == "message" and event.key == "message:33333333-3333-4333-8333-333333333333"
        assert event.data == {"uuid": "33333333-3333-4333-8333-333333333333", "display_name": "Andrew Brown",
                              "handle": "andrewbrown", "message": "hi", "created_at": T1,
                              "edited_at": None, "message_group_uuid": GROUP}
    # the same message again (a record delivered twice, or a MODIFY of it) makes the same keys, or none
    assert [e.key for e in events_of(record("INSERT", item), participants)] == [e.key for e in events]
    assert events_of(record("MODIFY", item), participants) == []
    assert events_of(record("REMOVE", item), participants) == []


def test_a_written_row_is_its_owners_conversation_and_read_events_only():
    sender_row, recipient_row = layout.message_rows(ANDREW, BAYKO, GROUP, "hi", T1)
    events = events_of(record("INSERT", recipient_row), lambda g: pytest.fail("rows need no participants"))
    assert [(e.user_uuid, e.kind) for e in events] == [(BAYKO["uuid"], "conversation")]
    assert events[0].data == {"uuid": GROUP, "display_name": "Andrew Brown", "handle": "andrewbrown",
                              "message": "hi", "created_at": T1, "unread_count": 1}
    # the sender's row carries the marker sending moved: their other tabs are told
    mine = events_of(record("INSERT", sender_row), participants)
    assert [(e.user_uuid, e.kind) for e in mine] == [(ANDREW["uuid"], "conversation"), (ANDREW["uuid"], "read")]
    assert mine[1].data == {"message_group_uuid": GROUP, "up_to": T1, "unread_count": 0}
    # marking read changes the count and the marker: new keys; the same state again: the same keys
    marked = {**recipient_row, "read_up_to": T1, "unread_count": 0}
    after = events_of(record("MODIFY", marked), participants)
    assert {e.key for e in after}.isdisjoint({e.key for e in events})
    assert events_of(record("MODIFY", marked), participants) == after
    # a row moved on to a later message keeps its marker: the read event's key is the one logged
    moved = {**marked, "sk": T2, "message": "again", "unread_count": 1}
    again = events_of(record("INSERT", moved), participants)
    assert [e.key for e in again if e.kind == "read"] == [e.key for e in after if e.kind == "read"]


def test_an_edited_message_is_one_message_changed_event_per_edit_for_each_participant():
    item = layout.message_item(GROUP, ANDREW, "hi", T1, "33333333-3333-4333-8333-333333333333")
    edited = {**item, "message": "hello", "edited_at": T2}
    events = events_of(record("MODIFY", edited), participants)
    assert {(e.user_uuid, e.kind) for e in events} == {(ANDREW["uuid"], "message_changed"),
                                                        (BAYKO["uuid"], "message_changed")}
    assert events[0].data == {"uuid": item["message_uuid"], "display_name": "Andrew Brown", "handle": "andrewbrown",
                              "message": "hello", "created_at": T1, "edited_at": T2, "message_group_uuid": GROUP}
    assert [e.key for e in events_of(record("MODIFY", edited), participants)] == [e.key for e in events]
    later = {**edited, "message": "hello!", "edited_at": "2026-12-03T10:00:09.000000+00:00"}
    assert {e.key for e in events_of(record("MODIFY", later), participants)}.isdisjoint({e.key for e in events})


def test_a_row_showing_an_edited_text_is_a_new_conversation_event():
    row = layout.message_rows(ANDREW, BAYKO, GROUP, "hi", T1)[1]
    before = events_of(record("INSERT", row), participants)
    edited = {**row, "message": "hello", layout.EDIT_STAMP: T2}
    after = events_of(record("MODIFY", edited), participants)
    assert after[0].data["message"] == "hello" and after[0].key != before[0].key


def test_headers_idempotency_records_and_removals_make_no_event():
    header = layout.header_item(GROUP, [ANDREW["uuid"], BAYKO["uuid"]], T1)
    for item in (header, layout.layout_item(), {"pk": "IDEM#x", "sk": "k", "group": GROUP}):
        assert events_of(record("INSERT", item), participants) == []
    row = layout.message_rows(ANDREW, BAYKO, GROUP, "hi", T1)[0]
    assert events_of(record("REMOVE", row), participants) == []


def test_the_stream_format_is_one_data_line_per_event_and_comments():
    assert server_sent(Event("42", "message", '{"a": 1}')) == 'id: 42\nevent: message\ndata: {"a": 1}\n\n'
    assert server_sent(Comment("ping")) == ": ping\n\n"


def test_a_hub_rings_only_its_users_streams_and_ends_them_all_on_shutdown():
    hub = EventHub("postgresql://unused", connect=lambda *a, **k: threading.Event().wait())
    hub._thread = threading.current_thread()  # no listener in this test: rings are made by hand
    mine, theirs = hub.subscribe("a"), hub.subscribe("b")
    hub._ring("a")
    assert mine.wait(0) and not theirs.wait(0)
    assert not mine.wait(0)  # a ring is read once
    hub.close_all()
    assert hub.closing.is_set() and mine.wait(0) and theirs.wait(0)
    hub.unsubscribe(mine)
    hub.unsubscribe(theirs)
    assert hub.open_streams() == 0


# -- over the in-memory table: what a conversation's life makes ------------------------------------
def test_a_conversations_changes_make_each_event_once_and_only_for_its_participants():

    table = MemoryTable(exists=False)
    store = ConversationStore(table)
    table_setup.create_table(store.table)
    first = store.send_to_user(ANDREW, BAYKO, "hi").message
    store.send_to_group(BAYKO, first.message_group_uuid, "hello back")
    records = table.stream_records()
    mover = RowMover(table)
    apply_batch(records, mover)
    records += table.stream_records()  # the rows the mover wrote
    store.mark_read(first.message_group_uuid, ANDREW["uuid"])
    records += table.stream_records()
    participants = mover.participants.both
    # every record delivered twice, as a stream may
    made = [e for record in records + records for e in events_of(record, participants)]
    by_key = {(e.user_uuid, e.key): e for e in made}
    assert {user for user, _ in by_key} == {ANDREW["uuid"], BAYKO["uuid"]}
    kinds = sorted((e.kind, e.user_uuid == ANDREW["uuid"]) for e in by_key.values())
    assert kinds.count(("message", True)) == kinds.count(("message", False)) == 2
    last = [e.data for e in by_key.values() if e.kind == "conversation" and e.user_uuid == ANDREW["uuid"]]
    assert {"message": "hello back", "unread_count": 0} in [
        {k: d[k] for k in ("message", "unread_count")} for d in last]  # read by andrew at the end
    assert any(e.kind == "read" and e.user_uuid == ANDREW["uuid"] and e.data["unread_count"] == 0
               for e in by_key.values())


def test_a_week5_groups_participants_are_its_rows_owners_once_the_index_shows_both():

    table = MemoryTable(exists=False)
    table_setup.create_table(table)
    group = "6f1c3c55-0000-4000-8000-00000000aaaa"  # a week-5 group: random uuid, no header
    mine, theirs = layout.message_rows(ANDREW, BAYKO, group, "from week 5", T1)
    table.put(mine)
    table.freeze_index()
    table.put(theirs)
    participants = Participants(table).both
    with pytest.raises(IndexBehind):  # one owner shown: the record is tried again later
        participants(group)
    table.catch_up_index()
    assert participants(group) == tuple(sorted([ANDREW["uuid"], BAYKO["uuid"]]))
    assert participants("6f1c3c55-0000-4000-8000-00000000bbbb") == ()  # no conversation at all


def _quiet_hub(**caps) -> EventHub:
    """A hub with no listener (these tests need no database; rings, if any, are made by hand)."""
    hub = EventHub("postgresql://unused", connect=lambda *a, **k: threading.Event().wait(), **caps)
    hub._thread = threading.current_thread()
    return hub


def test_a_hub_holds_a_few_streams_per_user_and_a_bounded_number_in_all():
    from domain.errors import Busy, Unavailable

    hub = _quiet_hub(per_user=2, per_process=3, retry_after=16)
    try:
        a1, a2 = hub.subscribe("a"), hub.subscribe("a")
        with pytest.raises(Busy) as mine:
            hub.subscribe("a")
        assert mine.value.codes == ["too_many_streams"] and mine.value.retry_after == 16
        b1 = hub.subscribe("b")
        for who in ("b", "c"):
            with pytest.raises(Unavailable) as full:
                hub.subscribe(who)
            assert full.value.codes == ["busy"] and not isinstance(full.value, Busy)
        with pytest.raises(Unavailable):
            hub.check_room()
        hub.unsubscribe(a1)
        hub.unsubscribe(a1)  # twice: no harm (the route and the stream's end both give it back)
        hub.check_room()
        assert hub.open_streams() == 2
        hub.subscribe("c")
    finally:
        hub.close_all()
        for s in (a1, a2, b1):
            hub.unsubscribe(s)


def test_reads_for_streams_take_a_few_slots_at_once_and_the_rest_wait():
    hub = _quiet_hub(reads_at_once=2)
    inside, most, lock = [0], [0], threading.Lock()
    release = threading.Event()

    def read() -> None:
        with hub.reading():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            release.wait(5)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    threading.Event().wait(0.2)
    with lock:
        assert inside[0] == 2  # four wait for a slot
    release.set()
    for thread in threads:
        thread.join(5)
    assert most[0] == 2 and inside[0] == 0


def test_a_stream_sending_full_pages_still_ends_when_its_time_is_up(monkeypatch):
    """Checked before every read: a stream kept busy by full pages (a user whose log grows as fast
    as it is read) ends at its token's end all the same, and gives its place back."""
    import itertools
    from types import SimpleNamespace

    from lib import event_log
    from lib.config import Settings
    from services.live_events import Stream

    now = [0.0]

    def full_page(conn, user, seq, **bounds):
        now[0] += 1.0  # each page takes a second
        return [event_log.LoggedEvent(seq + i, "message", "{}") for i in range(1, event_log.PAGE + 1)]

    monkeypatch.setattr(event_log, "resume", lambda conn, user, last: (0, False))
    monkeypatch.setattr(event_log, "after", full_page)
    hub = _quiet_hub()
    log = event_log.EventLog(SimpleNamespace(with_connection=lambda use: use(None)))
    ping = Settings().events_ping_seconds
    try:
        stream = Stream(hub, log, "u", hub.subscribe("u"), 5.0, None, ping, lambda: now[0])
        sent = list(itertools.islice(stream, 20 * event_log.PAGE))
        assert len([e for e in sent if isinstance(e, Event)]) == 5 * event_log.PAGE
        assert hub.open_streams() == 0
    finally:
        hub.close_all()


def test_a_gap_in_the_log_after_a_streams_position_is_a_reset(monkeypatch):
    """A purge between a stream's resume and its read (or any gap) is never skipped silently."""
    from types import SimpleNamespace

    from lib import event_log
    from lib.config import Settings
    from services.live_events import Stream

    monkeypatch.setattr(event_log, "resume", lambda conn, user, last: (3, False))
    monkeypatch.setattr(event_log, "after", lambda conn, user, seq, **bounds:
                        [event_log.LoggedEvent(s, "message", "{}") for s in (9, 10) if s > seq])
    monkeypatch.setattr(event_log, "head", lambda conn, user: 10)
    hub = _quiet_hub()
    log = event_log.EventLog(SimpleNamespace(with_connection=lambda use: use(None)))
    ping = Settings(events_ping_seconds=0.1).events_ping_seconds
    clock = iter(float(t) for t in range(100))
    try:
        stream = Stream(hub, log, "u", hub.subscribe("u"), 3.0, "3", ping, lambda: next(clock))
        events = [e for e in stream if isinstance(e, Event)]
        assert [(e.id, e.name) for e in events][:1] == [("10", "reset")]
        assert all(e.name == "reset" for e in events)
    finally:
        hub.close_all()


def test_a_streams_reads_of_the_log_wait_for_a_slot_of_the_hubs(monkeypatch):
    """Every read a stream makes (its resume, its pages) takes one of the hub's few slots: with
    the slots taken, the stream reads nothing (it holds no pool connection) until one frees."""
    from types import SimpleNamespace

    from lib import event_log
    from lib.config import Settings
    from services.live_events import Stream

    reads: list[str] = []
    monkeypatch.setattr(event_log, "resume", lambda conn, user, last: (reads.append("resume"), (0, False))[1])
    monkeypatch.setattr(event_log, "after", lambda conn, user, seq, **bounds: (reads.append("after"), [])[1])
    hub = _quiet_hub(reads_at_once=1)
    log = event_log.EventLog(SimpleNamespace(with_connection=lambda use: use(None)))
    ping = Settings(events_ping_seconds=0.05).events_ping_seconds
    now = [0.0]
    stream = Stream(hub, log, "u", hub.subscribe("u"), 1.0, None, ping, lambda: now[0])
    seen: list[object] = []
    try:
        with hub.reading():  # the process's one slot, taken
            reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
            reader.start()
            reader.join(0.3)
            assert reads == [] and reader.is_alive()
        reader.join(0.5)
        assert reads[:2] == ["resume", "after"]
    finally:
        now[0] = 2.0
        hub.close_all()
        reader.join(5)
