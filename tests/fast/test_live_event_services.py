"""Live events (services/live_events.py) over the in-memory event log and a hub without a
listener: tickets, the stream a ticket opens, what it sends and when it ends; and the events a
conversation's changes put in the log (the events Lambda's work: lib/conversations/events.py).
The same through HTTP with two instances and PostgreSQL: tests/stack/test_live_events.py."""
from __future__ import annotations

import itertools
import json

import pytest

from domain.errors import Busy, Unauthenticated, Unavailable
from lib import event_log
from lib.conversations.events import events_of
from lib.conversations.participants import Participants
from services.create_message import CreateMessage
from services.live_events import Comment, Event, IssueTicket, OpenStream
from tests.fakes import MemoryEventLog, quiet_hub, ring


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def log(clock):
    return MemoryEventLog(clock)


def events_in(stream, count: int) -> list:
    return list(itertools.islice((item for item in stream if isinstance(item, Event)), count))


def open_stream(world, log, clock, user, last_event_id=None, most_seconds=60.0, ping_seconds=0.01, trust=300.0):
    ticket = IssueTicket.run(log, user, clock() + trust, 5, clock)["ticket"]
    return OpenStream.run(world.parts.live, log, ticket, last_event_id, most_seconds, ping_seconds, clock)[1]


def test_a_ticket_is_short_lived_and_never_outlives_the_trust_in_the_token(world, log, clock):
    ana = world.person("ana")
    answer = IssueTicket.run(log, ana, clock() + 300, 5, clock)
    assert answer["expires_in"] == event_log.TICKET_SECONDS and len(answer["ticket"]) >= 40
    assert IssueTicket.run(log, ana, clock() + 7, 5, clock)["expires_in"] == 7


def test_a_user_holds_a_few_unused_tickets_at_most(world, log, clock):
    ana, bo = world.person("ana"), world.person("bo")
    for _ in range(3):
        IssueTicket.run(log, ana, clock() + 300, 3, clock)
    with pytest.raises(Busy) as busy:
        IssueTicket.run(log, ana, clock() + 300, 3, clock)
    assert busy.value.codes == ["too_many_tickets"] and busy.value.retry_after == event_log.TICKET_SECONDS
    assert IssueTicket.run(log, bo, clock() + 300, 3, clock)["ticket"]  # another user's are theirs
    clock.now += event_log.TICKET_SECONDS + 1  # unused ones expire
    assert IssueTicket.run(log, ana, clock() + 300, 3, clock)["ticket"]


@pytest.mark.parametrize("ticket", [None, "", "unknown", "x" * 500])
def test_a_stream_needs_a_ticket_it_knows(world, log, clock, ticket):
    with pytest.raises(Unauthenticated) as refused:
        OpenStream.run(world.parts.live, log, ticket, None, 60.0, 1.0, clock)
    assert refused.value.codes == ["ticket_invalid"]


def test_a_ticket_opens_one_stream_once_and_not_after_it_expired(world, log, clock):
    ana = world.person("ana")
    ticket = IssueTicket.run(log, ana, clock() + 300, 5, clock)["ticket"]
    user, stream = OpenStream.run(world.parts.live, log, ticket, None, 60.0, 1.0, clock)
    assert user == ana["uuid"] and stream.user == ana["uuid"]
    stream.close()
    with pytest.raises(Unauthenticated):
        OpenStream.run(world.parts.live, log, ticket, None, 60.0, 1.0, clock)
    late = IssueTicket.run(log, ana, clock() + 300, 5, clock)["ticket"]
    clock.now += event_log.TICKET_SECONDS + 1
    with pytest.raises(Unauthenticated):
        OpenStream.run(world.parts.live, log, late, None, 60.0, 1.0, clock)


def test_a_full_process_refuses_before_the_ticket_is_spent(log, clock, world):
    ana = world.person("ana")
    hub = quiet_hub(per_process=1)
    held = hub.subscribe("someone")
    ticket = IssueTicket.run(log, ana, clock() + 300, 5, clock)["ticket"]
    with pytest.raises(Unavailable) as busy:
        OpenStream.run(hub, log, ticket, None, 60.0, 1.0, clock)
    assert busy.value.codes == ["busy"]
    hub.unsubscribe(held)
    assert OpenStream.run(hub, log, ticket, None, 60.0, 1.0, clock)[0] == ana["uuid"], "the ticket was kept"


def test_a_user_holds_a_few_streams_per_process(log, clock, world):
    ana = world.person("ana")
    hub = quiet_hub(per_user=2)
    streams = [OpenStream.run(hub, log, IssueTicket.run(log, ana, clock() + 300, 5, clock)["ticket"],
                              None, 60.0, 1.0, clock)[1] for _ in range(2)]
    with pytest.raises(Busy) as busy:
        OpenStream.run(hub, log, IssueTicket.run(log, ana, clock() + 300, 5, clock)["ticket"], None, 60.0, 1.0, clock)
    assert busy.value.codes == ["too_many_streams"]
    streams[0].close()
    streams[0].close()  # closing twice gives one place back
    assert hub.open_streams() == 1


def test_a_stream_sends_what_is_logged_after_it_opened_in_order(world, log, clock):
    ana = world.person("ana")
    log.append([event_log_event(ana, "before")])
    stream = open_stream(world, log, clock, ana)
    items = iter(stream)
    assert isinstance(next(items), Comment)  # the retention note
    assert next(items) == Comment("ping")  # it has read where it starts, and waits
    log.append([event_log_event(ana, "one"), event_log_event(ana, "two")])
    ring(world.parts.live, ana["uuid"])
    sent = list(itertools.islice((i for i in items if isinstance(i, Event)), 2))
    assert [(e.id, json.loads(e.data)["n"]) for e in sent] == [("2", "one"), ("3", "two")]
    stream.close()


def event_log_event(user, n):
    from domain.live_events import NewEvent
    return NewEvent(user["uuid"], "message", {"n": n}, f"key-{n}")


def test_a_reconnecting_stream_gets_exactly_what_it_missed(world, log, clock):
    ana = world.person("ana")
    log.append([event_log_event(ana, n) for n in ("a", "b", "c")])
    stream = open_stream(world, log, clock, ana, last_event_id="1")
    assert [(e.id, e.name) for e in events_in(stream, 2)] == [("2", "message"), ("3", "message")]
    stream.close()


@pytest.mark.parametrize("last", ["99", "abc", "-1", "1" * 30])
def test_an_id_the_log_never_gave_is_a_reset(world, log, clock, last):
    ana = world.person("ana")
    log.append([event_log_event(ana, "a")])
    stream = open_stream(world, log, clock, ana, last_event_id=last)
    assert [(e.id, e.name, e.data) for e in events_in(stream, 1)] == [("1", "reset", "{}")]
    stream.close()


def test_a_gap_after_the_streams_position_is_a_reset(world, log, clock):
    ana = world.person("ana")
    log.append([event_log_event(ana, n) for n in range(5)])
    log.forget_until(ana["uuid"], 3)  # purged meanwhile
    stream = open_stream(world, log, clock, ana, last_event_id="1")
    assert events_in(stream, 1)[0].name == "reset"
    stream.close()


def test_a_stream_pings_while_idle_and_ends_when_the_trust_in_its_token_does(world, log):
    ana = world.person("ana")
    ticks = Clock()
    stream = open_stream(world, log, ticks, ana, trust=1.0, ping_seconds=0.01)
    items = iter(stream)
    next(items)  # the retention note
    assert next(items) == Comment("ping")
    ticks.now += 2.0  # past the trust: the stream ends, and gives its place back
    assert list(items) in ([], [Comment("ping")])
    assert world.parts.live.open_streams() == 0


def test_a_stream_ends_when_the_process_stops(world, log, clock):
    ana = world.person("ana")
    stream = open_stream(world, log, clock, ana)
    items = iter(stream)
    next(items)
    world.parts.live.close_all()
    assert [i for i in items if isinstance(i, Event)] == []
    assert world.parts.live.open_streams() == 0


# -- what a conversation's changes put in the log (the events Lambda) ---------------------------------
def log_the_stream(world, log, participants) -> dict[str, int]:
    return log.append(e for record in world.table.stream_records() for e in events_of(record, participants))


def test_a_message_is_logged_once_for_each_participant_and_nobody_else(world, log):
    ana, bo, eve = world.person("ana"), world.person("bo"), world.person("eve")
    participants = Participants(world.table).both
    sent = CreateMessage.run(world.parts.conversations, world.parts.users, world.parts.blocks, ana, {"handle": "bo", "message": "hi"})
    records = world.table.stream_records()
    for record in records + records:  # delivered twice, as a stream may
        log.append(events_of(record, participants))
    assert eve["uuid"] not in log.heads
    for user in (ana, bo):
        kinds = [(kind, json.loads(data)) for _, kind, data, *_ in log.events[user["uuid"]]]
        assert [d for k, d in kinds if k == "message"] == [{**sent, "message_group_uuid": sent["message_group_uuid"]}]
    conversation = [d for k, d in ((k, json.loads(d)) for _, k, d, *_ in log.events[bo["uuid"]]) if k == "conversation"]
    assert conversation and conversation[0]["unread_count"] == 1 and conversation[0]["handle"] == "ana"
