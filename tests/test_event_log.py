"""Each user's event log in PostgreSQL (lib/event_log.py): numbered with no gap, in commit order,
each event once however often it is appended, replayed from any kept number, and the tickets
that open a stream. Against the session's real PostgreSQL, with appenders racing each other."""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from lib import event_log
from lib.config import Settings
from lib.event_log import NewEvent


@pytest.fixture
def conn(settings: Settings):
    with psycopg.connect(settings.connection_url, autocommit=True) as connection:
        yield connection


def user() -> str:
    return str(uuid.uuid4())


def event(who: str, key: str, kind: str = "message") -> NewEvent:
    return NewEvent(who, kind, {"key": key}, key)


def test_appends_number_each_users_events_in_order_and_skip_what_is_logged(conn):
    a, b = user(), user()
    heads = event_log.append(conn, [event(a, "m1"), event(b, "m1"), event(a, "m2"), event(a, "m1")])
    assert heads == {a: 2, b: 1}
    # a batch delivered again, and one that holds old and new events
    assert event_log.append(conn, [event(a, "m1"), event(a, "m2")]) == {}
    assert event_log.append(conn, [event(a, "m2"), event(a, "m3")]) == {a: 3}
    assert [(e.seq, e.data) for e in event_log.after(conn, a, 0)] == [
        (1, '{"key": "m1"}'), (2, '{"key": "m2"}'), (3, '{"key": "m3"}')]
    assert event_log.head(conn, a) == 3 and event_log.head(conn, user()) == 0


def test_an_append_notifies_listeners_when_it_commits(conn, settings: Settings):
    who = user()
    with psycopg.connect(settings.connection_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {event_log.CHANNEL}")
        event_log.append(conn, [event(who, "x"), event(who, "y")])
        payloads = [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)]
    assert f"{who}:2" in payloads


def test_racing_appenders_leave_no_gap_and_no_duplicate_and_a_reader_never_sees_a_number_behind_it(settings: Settings):
    """Eight appenders send overlapping batches for the same users at once (as several Lambda
    invocations and retried batches do) while a reader follows one user's log: every number
    from 1 to the head exists once, each key is logged once, and no read ever finds an event
    numbered at or below one it had already read, nor skips one."""
    people = [user(), user()]
    keys = [f"k{i}" for i in range(120)]
    stop = threading.Event()
    seen: list[int] = []
    problems: list[str] = []

    def follow() -> None:
        with psycopg.connect(settings.connection_url, autocommit=True) as reader:
            position = 0
            while not stop.is_set() or position < event_log.head(reader, people[0]):
                for logged in event_log.after(reader, people[0], position):
                    if logged.seq != position + 1:
                        problems.append(f"after {position} came {logged.seq}")
                    position = logged.seq
                    seen.append(logged.seq)

    def append(offset: int) -> None:
        with psycopg.connect(settings.connection_url, autocommit=True) as writer:
            for start in range(offset, len(keys), 10):
                batch = keys[start:start + 15]  # overlaps the next batch: duplicates on purpose
                event_log.append(writer, [event(p, k) for k in batch for p in people])

    reader = threading.Thread(target=follow)
    reader.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(append, [0, 0, 5, 5, 0, 5, 0, 5]))
    stop.set()
    reader.join(30)
    assert not problems, problems[:5]
    with psycopg.connect(settings.connection_url, autocommit=True) as conn:
        for person in people:
            logged = event_log.after(conn, person, 0, limit=1000)
            assert [e.seq for e in logged] == list(range(1, len(keys) + 1))
            assert sorted(e.data for e in logged) == sorted(f'{{"key": "{k}"}}' for k in keys)
    assert seen == list(range(1, len(keys) + 1))


def test_a_stream_resumes_right_after_a_kept_id_and_resets_otherwise(conn):
    who = user()
    assert event_log.resume(conn, who, None) == (0, False)
    event_log.append(conn, [event(who, f"e{i}") for i in range(5)])
    assert event_log.resume(conn, who, None) == (5, False)  # from now on
    assert event_log.resume(conn, who, "2") == (2, False)
    assert event_log.resume(conn, who, "5") == (5, False)
    for unknown in ("6", "-1", "abc", "", "9" * 30):
        assert event_log.resume(conn, who, unknown) == (5, True), unknown
    # events past the retention window are purged: an id before them can no longer be continued
    conn.execute("UPDATE events SET created_at = now() - interval '2 days' WHERE user_uuid = %s AND seq <= 3", [who])
    event_log.purge(conn)
    assert event_log.resume(conn, who, "2") == (5, True)
    assert event_log.resume(conn, who, "3") == (3, False)  # 4 and 5 are kept


def test_a_ticket_opens_once_for_its_user_until_it_expires_and_is_kept_hashed(conn):
    who = user()
    ticket = event_log.new_ticket(conn, who, 2_000_000_000.0)
    stored = conn.execute("SELECT ticket_hash FROM event_tickets WHERE user_uuid = %s", [who]).fetchone()[0]
    assert ticket.encode() not in bytes(stored) and len(ticket) >= 40
    assert event_log.claim_ticket(conn, ticket) == (who, 2_000_000_000.0)
    assert event_log.claim_ticket(conn, ticket) is None  # used
    late = event_log.new_ticket(conn, who, 2_000_000_000.0, ticket_seconds=1)
    conn.execute("UPDATE event_tickets SET expires_at = now() - interval '1 second' WHERE user_uuid = %s", [who])
    assert event_log.claim_ticket(conn, late) is None  # expired
    assert event_log.claim_ticket(conn, "") is None and event_log.claim_ticket(conn, "x" * 101) is None


def test_the_listener_wakes_its_users_streams_and_after_losing_its_connection_wakes_them_all(settings: Settings, conn):
    """A process's listener (lib/event_listener.py) rings the streams of the user an append names,
    and no other. When PostgreSQL drops its connection, it listens again and rings every stream,
    so events appended while it was not listening are read all the same."""
    from lib.event_listener import EventHub

    hub = EventHub(settings.connection_url)
    mine, theirs = user(), user()
    stream, other = hub.subscribe(mine), hub.subscribe(theirs)
    try:
        assert hub.listening.wait(10)
        stream.wait(0), other.wait(0)  # the ring every stream gets when the listener starts
        event_log.append(conn, [event(mine, "a")])
        assert stream.wait(5) and not other.wait(0.5)
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE query LIKE 'LISTEN%%' AND pid <> pg_backend_pid()")
        event_log.append(conn, [event(theirs, "b")])  # while nobody listens
        assert other.wait(15), "rung after the listener came back"
        assert hub.listening.wait(10)
    finally:
        hub.close_all()
        hub.unsubscribe(stream)
        hub.unsubscribe(other)
