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


def test_an_erasure_waits_for_an_append_under_way_that_logs_the_text(conn, settings: Settings):
    """A deletion's record and a late record showing the text, in two Lambda invocations at once:
    the erasure waits for the append that holds the text (its SHARE lock), so the text cannot be
    committed unseen by it. Without the lock, the erasure's UPDATE would miss the uncommitted row."""
    who, ref = user(), f"group-{uuid.uuid4().hex[:8]}/2026-12-07T00:00:00.000000+00:00"
    with psycopg.connect(settings.connection_url, autocommit=True) as other:
        erasing = threading.Thread(target=lambda: event_log.append(other, [
            NewEvent(who, "message_deleted", {"uuid": "u"}, f"deleted:{ref}", erases=ref)]))
        with conn.transaction():
            event_log.append(conn, [NewEvent(who, "conversation", {"message": "secret"}, f"row:{ref}", shows=ref)])
            erasing.start()
            erasing.join(0.5)
            assert erasing.is_alive(), "the erasure waits for the append under way"
        erasing.join(10)
    assert [(e.kind, e.data) for e in event_log.after(conn, who, 0)] == [
        ("conversation", None), ("message_deleted", '{"uuid": "u"}')]


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
    ticket = event_log.new_ticket(conn, who, 2_000_000_000.0, most=5)
    stored = conn.execute("SELECT ticket_hash FROM event_tickets WHERE user_uuid = %s", [who]).fetchone()[0]
    assert ticket.encode() not in bytes(stored) and len(ticket) >= 40
    assert event_log.claim_ticket(conn, ticket) == (who, 2_000_000_000.0)
    assert event_log.claim_ticket(conn, ticket) is None  # used
    late = event_log.new_ticket(conn, who, 2_000_000_000.0, most=5, ticket_seconds=1)
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


def test_a_ticket_never_outlives_the_trust_in_its_token(conn):
    """A ticket bought a second before its token's trust ends cannot open a stream after it: its
    own expiry is the earlier of the two, and a claim checks both."""
    import time

    who = user()
    spent = event_log.new_ticket(conn, who, time.time() - 0.5, most=5)
    assert spent is not None and event_log.claim_ticket(conn, spent) is None
    soon = event_log.new_ticket(conn, who, time.time() + 600, most=5)
    expires = conn.execute("SELECT extract(epoch FROM expires_at - now()) FROM event_tickets "
                           "WHERE user_uuid = %s AND token_expires_at > now()", [who]).fetchone()[0]
    assert 0 < float(expires) <= event_log.TICKET_SECONDS
    # the token's trust ends before the ticket's own time (a row written as an older API did)
    conn.execute("UPDATE event_tickets SET token_expires_at = now() - interval '1 second', "
                 "expires_at = now() + interval '20 seconds' WHERE user_uuid = %s", [who])
    assert event_log.claim_ticket(conn, soon) is None


def test_a_user_holds_at_most_a_few_unused_tickets_even_when_buying_at_once(settings: Settings):
    """Twenty purchases at once, each on its own connection: exactly `most` tickets are made; one
    used or expired frees its place."""
    who, most = user(), 5

    def buy(_: int) -> str | None:
        with psycopg.connect(settings.connection_url, autocommit=True) as own:
            return event_log.new_ticket(own, who, 2_000_000_000.0, most=most)

    with ThreadPoolExecutor(20) as pool:
        bought = [t for t in pool.map(buy, range(20)) if t]
    assert len(bought) == most
    with psycopg.connect(settings.connection_url, autocommit=True) as conn:
        assert event_log.new_ticket(conn, who, 2_000_000_000.0, most=most) is None
        assert event_log.claim_ticket(conn, bought[0]) is not None
        assert event_log.new_ticket(conn, who, 2_000_000_000.0, most=most) is not None
        assert event_log.new_ticket(conn, user(), 2_000_000_000.0, most=most) is not None  # others unaffected


def test_a_page_of_the_log_is_bounded_in_bytes_and_never_empty_while_events_wait(conn):
    who = user()
    big = "\U0001F600" * 1024  # a message of emoji: 12 KiB of JSON text
    event_log.append(conn, [NewEvent(who, "message", {"message": big}, f"k{i}") for i in range(60)])
    page = event_log.after(conn, who, 0)
    size = sum(len(e.data.encode()) for e in page)
    assert [e.seq for e in page] == list(range(1, len(page) + 1))
    assert event_log.PAGE_BYTES <= size < event_log.PAGE_BYTES + len(page[-1].data.encode())
    assert event_log.is_full(page)
    # one event larger than a page still comes, alone
    huge = event_log.after(conn, who, 0, max_bytes=10)
    assert [e.seq for e in huge] == [1]
    # the end of the log: a page that is not full
    rest = event_log.after(conn, who, 55)
    assert [e.seq for e in rest] == [56, 57, 58, 59, 60] and not event_log.is_full(rest)


def test_the_purge_never_keeps_an_event_behind_one_it_deleted_under_racing_appends(settings: Settings, conn):
    """Event numbers are given in commit order, but an event's time is its transaction's start: an
    append that began first and committed second holds N+1 with a time older than N's. At the
    retention boundary between the two, a purge by time would delete N+1 and keep N, and a page
    resuming from N-1 would skip N+1 without a reset. The purge goes by number: N goes too."""
    who = user()
    event_log.append(conn, [event(who, "old")])  # 1
    with psycopg.connect(settings.connection_url, autocommit=True) as early:
        with early.transaction():
            early.execute("SELECT now()")  # its transaction, and its time, start here
            conn.execute("SELECT pg_sleep(0.3)")
            event_log.append(conn, [event(who, "committed first")])  # 2, the later time
            event_log.append(early, [event(who, "committed second")])  # 3, the earlier time
    times = dict(conn.execute("SELECT seq, created_at FROM events WHERE user_uuid = %s", [who]).fetchall())
    assert times[3] < times[2]
    # the boundary between the two: 3 is past it, 2 is not
    middle = times[3] + (times[2] - times[3]) / 2
    keep = conn.execute("SELECT extract(epoch FROM now() - %s)", [middle]).fetchone()[0]
    event_log.purge(conn, keep_seconds=float(keep))
    kept = [r[0] for r in conn.execute("SELECT seq FROM events WHERE user_uuid = %s ORDER BY seq", [who])]
    assert kept == [], "2 was kept behind the purged 3"
    assert event_log.resume(conn, who, "1") == (3, True)  # the page is told to reload


def test_the_purge_deletes_in_bounded_statements_each_users_oldest_first(conn):
    a, b = user(), user()
    event_log.append(conn, [event(a, f"a{i}") for i in range(7)] + [event(b, f"b{i}") for i in range(4)])
    conn.execute("UPDATE events SET created_at = now() - interval '2 days' "
                 "WHERE (user_uuid = %s AND seq <= 5) OR (user_uuid = %s AND seq <= 4)", [a, b])
    statements = []
    conn.add_notice_handler(lambda notice: None)
    original = conn.execute

    def counted(query, params=None, **kwargs):
        statements.append(query)
        return original(query, params, **kwargs)

    conn.execute = counted  # type: ignore[method-assign]
    gone = event_log.purge(conn, batch=2)
    conn.execute = original  # type: ignore[method-assign]
    purges = [q for q in statements if "erased_messages" not in q]
    assert gone == 9 and len(purges) == 5  # 2 + 2 + 2 + 2 + 1
    assert len(statements) == 6, "and one for the erased messages' notes"
    left = conn.execute("SELECT user_uuid::text, seq FROM events WHERE user_uuid IN (%s, %s) ORDER BY seq",
                        [a, b]).fetchall()
    assert left == [(a, 6), (a, 7)]


def test_a_purge_with_a_deadline_stops_between_statements(conn):
    who = user()
    event_log.append(conn, [event(who, f"e{i}") for i in range(6)])
    conn.execute("UPDATE events SET created_at = now() - interval '2 days' WHERE user_uuid = %s", [who])
    ticks = iter([0.0, 1.0, 2.0, 3.0])
    assert event_log.purge(conn, batch=2, until=0.5, clock=lambda: next(ticks)) == 4  # two statements
    assert event_log.purge(conn, batch=2) == 2


def test_the_events_lambda_bounds_its_waits_and_a_timed_out_batch_is_retried_whole(settings: Settings, monkeypatch):
    """A user's head row locked elsewhere (an append hung on a frozen connection, say) makes the
    events Lambda's statement fail within its lock_timeout, not hang to the function's timeout:
    the batch's transaction is rolled back whole (no user got part of it) and Lambda's retry logs
    it once. Its statement bounds are set on its connection, within the function's time budget."""
    import types

    import yaml

    from devstack import lambdas
    from lib.config import ROOT

    monkeypatch.setenv("CONNECTION_URL", settings.connection_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", settings.aws_region)
    monkeypatch.delenv("CONNECTION_SECRET_ARN", raising=False)
    handler = lambdas.load(lambdas.LAMBDAS / "cruddur-messaging-events.py")
    template = yaml.load((ROOT / "aws" / "template.yaml").read_text(), Loader=yaml.BaseLoader)
    budget_ms = int(template["Resources"]["EventsFunction"]["Properties"]["Timeout"]) * 1000
    assert handler.LOCK_TIMEOUT_MS + handler.STATEMENT_TIMEOUT_MS + handler.PURGE_SECONDS * 1000 < budget_ms
    bounded = handler._db.get()
    shown = {name: bounded.execute(f"SHOW {name}").fetchone()[0]
             for name in ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")}
    assert shown == {"lock_timeout": f"{handler.LOCK_TIMEOUT_MS // 1000}s",
                     "statement_timeout": f"{handler.STATEMENT_TIMEOUT_MS // 1000}s",
                     "idle_in_transaction_session_timeout": f"{handler.IDLE_IN_TRANSACTION_MS // 1000}s"}
    handler._db.forget()
    # the same mechanism, quicker
    monkeypatch.setattr(handler, "_db", handler.OneConnection(options="-c lock_timeout=300"))
    first, locked = sorted([user(), user()])  # appends lock users in this order
    batch = [NewEvent(first, "message", {"n": 1}, "one"), NewEvent(locked, "message", {"n": 2}, "two")]
    handler.events = types.SimpleNamespace(events_of=lambda record, participants: batch if record else [])
    with psycopg.connect(settings.connection_url, autocommit=True) as other:
        event_log.append(other, [NewEvent(locked, "message", {"n": 0}, "zero")])
        with other.transaction():
            other.execute("SELECT seq FROM event_heads WHERE user_uuid = %s FOR UPDATE", [locked])
            with pytest.raises(psycopg.errors.LockNotAvailable):
                handler.lambda_handler({"Records": [{"x": 1}]}, None)
        with psycopg.connect(settings.connection_url, autocommit=True) as conn:
            assert event_log.head(conn, first) == 0, "the batch was applied in part"
            assert event_log.head(conn, locked) == 1
        for _ in range(2):  # Lambda's retry, and a duplicate delivery of it
            assert handler.lambda_handler({"Records": [{"x": 1}]}, None) == {"batchItemFailures": []}
        with psycopg.connect(settings.connection_url, autocommit=True) as conn:
            assert [(e.seq, e.data) for e in event_log.after(conn, first, 0)] == [(1, '{"n": 1}')]
            assert [e.seq for e in event_log.after(conn, locked, 0)] == [1, 2]
    handler._db.forget()


def test_each_lambda_has_a_database_user_that_can_do_its_work_and_nothing_else(settings: Settings):
    """Issue 33, item 11: bin/db/lambda-users makes cruddur_events (the event log only) and
    cruddur_sign_up (users only), with the passwords it is given; each does its Lambda's work
    as that user, and is refused the other's tables."""
    import os
    import subprocess

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from lib import users
    from lib.config import ROOT

    env = {**os.environ, "CONNECTION_URL": settings.connection_url,
           "EVENTS_DB_PASSWORD": "events-secret", "SIGN_UP_DB_PASSWORD": "sign-up-secret"}
    for _ in range(2):  # idempotent
        made = subprocess.run([str(ROOT / "bin" / "db" / "lambda-users")], env=env, capture_output=True,
                              text=True, timeout=60)
        assert made.returncode == 0, made.stdout + made.stderr
    assert "cruddur_events: ready, password set" in made.stdout

    def as_user(user: str, password: str) -> psycopg.Connection:
        params = conninfo_to_dict(settings.connection_url)
        return psycopg.connect(make_conninfo(**{**params, "user": user, "password": password}), autocommit=True)

    who = user()
    with as_user("cruddur_events", "events-secret") as events_conn:
        assert event_log.append(events_conn, [event(who, "a"), event(who, "b")]) == {who: 2}
        ref = f"g-{uuid.uuid4().hex[:8]}/t"  # a message's text shown, then erased
        event_log.append(events_conn, [NewEvent(who, "message", {"t": "x"}, f"m-{ref}", shows=ref)])
        event_log.append(events_conn, [NewEvent(who, "message_deleted", {}, f"d-{ref}", erases=ref)])
        assert event_log.after(events_conn, who, 2)[0].data is None
        event_log.purge(events_conn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            events_conn.execute("UPDATE events SET kind = kind WHERE false")
        for forbidden in ("SELECT * FROM users LIMIT 1", "SELECT * FROM activities LIMIT 1",
                          "SELECT * FROM event_tickets LIMIT 1"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                events_conn.execute(forbidden)
    handle = f"lu{uuid.uuid4().hex[:8]}"
    with as_user("cruddur_sign_up", "sign-up-secret") as sign_up_conn:
        made_user = users.create_user(sign_up_conn, {
            "sub": str(uuid.uuid4()), "email": f"{handle}@example.test", "email_verified": "true",
            "name": "Lambda User", "preferred_username": handle})
        for forbidden in ("SELECT * FROM events LIMIT 1", "DELETE FROM users WHERE false",
                          "UPDATE users SET handle = handle WHERE false", "SELECT * FROM activities LIMIT 1"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                sign_up_conn.execute(forbidden)
    with psycopg.connect(settings.connection_url, autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE uuid = %s", [made_user])


def test_the_notes_of_erased_messages_go_with_the_events_that_could_show_them(conn):
    old_ref, new_ref = (f"g-{uuid.uuid4().hex[:8]}/{n}" for n in ("old", "new"))
    who = user()
    event_log.append(conn, [NewEvent(who, "message_deleted", {}, f"d-{r}", erases=r) for r in (old_ref, new_ref)])
    conn.execute("UPDATE erased_messages SET erased_at = now() - interval '2 days' WHERE message_ref = %s", [old_ref])
    event_log.purge(conn)
    noted = {r[0] for r in conn.execute("SELECT message_ref FROM erased_messages WHERE message_ref IN (%s, %s)",
                                        [old_ref, new_ref])}
    assert noted == {new_ref}


def test_events_logged_before_shows_existed_are_named_by_the_migration_and_erased_with_their_message(
        conn, settings: Settings):
    """A log written before deletions were possible has no `shows`: loading db/schema.sql again
    (bin/db/migrate) names each message's and conversation row's event from its data, so a
    deletion of a message sent before the deployment erases them too."""
    import json

    from lib import db

    who, group, at = user(), str(uuid.uuid4()), "2026-12-07T01:02:03.000004+00:00"
    old = [(1, "message", {"uuid": "m", "message_group_uuid": group, "created_at": at, "message": "secret"}),
           (2, "conversation", {"uuid": group, "created_at": at, "message": "secret", "unread_count": 1}),
           (3, "read", {"message_group_uuid": group, "up_to": at, "unread_count": 0})]
    for seq, kind, data in old:
        conn.execute("INSERT INTO events (user_uuid, seq, kind, data, event_key) VALUES (%s, %s, %s, %s, %s)",
                     [who, seq, kind, json.dumps(data), f"old-{seq}"])
    conn.execute("INSERT INTO event_heads (user_uuid, seq) VALUES (%s, 3)", [who])
    db.run_sql_file(settings.connection_url, db.SCHEMA_FILE)
    ref = f"{group}/{at}"
    event_log.append(conn, [NewEvent(who, "message_deleted", {"uuid": "m"}, "deleted-m", erases=ref)])
    assert [(e.kind, e.data is None) for e in event_log.after(conn, who, 0)] == [
        ("message", True), ("conversation", True), ("read", False), ("message_deleted", False)]
