"""Live events (../shared/CONTRACT.md, "Live events"): a ticket for the signed-in caller, and the
stream a ticket opens. The log the stream reads is lib/event_log.py; what wakes it, and what a
process's streams may take of it, lib/event_listener.py; what the events are,
domain/live_events.py.

What one account may hold (docs/security.md): a few unused tickets, a few streams per process,
and nothing that grows with a slow reader: a stream reads a bounded page at a time, and the
route ends a stream whose page stops taking what is sent. A stream lasts no longer than the
trust in the token that bought its ticket (TOKEN_RECHECK_SECONDS at most), so a revoked user's
stream ends within the bound their requests have; the page buys a new ticket, which checks the
token again, and resumes from its last id."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator, NamedTuple

from domain.errors import Busy, Unauthenticated, Unavailable
from lib import event_log
from lib.event_listener import EventHub, Subscription
from lib.event_log import EventLog

log = logging.getLogger(__name__)


class Event(NamedTuple):
    id: str
    name: str
    data: str  # one line of JSON


class Comment(NamedTuple):
    text: str


class IssueTicket:
    @staticmethod
    def run(events: EventLog, user: dict[str, Any], trusted_until: float, most: int,
            clock: Callable[[], float] = time.time) -> dict[str, Any]:
        """A single-use ticket that opens one stream of the user's (the caller, trusted until
        `trusted_until`: CurrentUser.for_a_while), good for a few seconds and never past that
        trust; at most `most` unused at a time."""
        ticket = events.new_ticket(str(user["uuid"]), trusted_until, most)
        if ticket is None:
            raise Busy("too_many_tickets", detail=f"at most {most} unused tickets at a time: use one, "
                       f"or wait until they expire", retry_after=event_log.TICKET_SECONDS)
        return {"ticket": ticket, "expires_in": max(1, min(event_log.TICKET_SECONDS, int(trusted_until - clock())))}


class OpenStream:
    @staticmethod
    def run(hub: EventHub, events: EventLog, ticket: str | None, last_event_id: str | None,
            most_seconds: float, ping_seconds: float,
            clock: Callable[[], float] = time.time) -> tuple[str, "Stream"]:
        """(the ticket's user, their stream, lasting at most `most_seconds` and pinging after
        `ping_seconds` of silence). The ticket is used up here and the stream takes its place in
        the process before the response starts, so a refusal is a plain 4xx or 503."""
        hub.check_room()  # before the ticket is spent: the page may use it at another server
        claimed = events.claim_ticket(ticket or "")
        if claimed is None:
            raise Unauthenticated("ticket_invalid",
                                  detail="unknown, used or expired ticket: POST /api/events/ticket for a new one")
        user, trusted_until = claimed
        # It ends when the trust in the token does (its expiry, or its next check), or after
        # `most_seconds`, whichever comes first.
        ends_at = min(trusted_until, clock() + most_seconds)
        return user, Stream(hub, events, user, hub.subscribe(user), ends_at, last_event_id, ping_seconds, clock)


class Stream:
    """One open stream: iterate for its events and comments; `close()` gives its place back (the
    route calls it when the response ends, whether or not it was iterated)."""

    def __init__(self, hub: EventHub, events: EventLog, user: str, subscription: Subscription,
                 ends_at: float, last_event_id: str | None, ping_seconds: float,
                 clock: Callable[[], float]):
        self._hub, self._log, self.user, self._subscription = hub, events, user, subscription
        self.ends_at, self._last_event_id, self._clock = ends_at, last_event_id, clock
        self._ping_seconds = ping_seconds

    def close(self) -> None:
        self._hub.unsubscribe(self._subscription)  # idempotent

    def _read(self, read: Callable[[], Any]) -> Any:
        with self._hub.reading():  # a few reads at a time for all the process's streams
            return read()

    def _over(self) -> bool:
        """The trust in its token is spent, its time is up, or the process is stopping."""
        return self._clock() >= self.ends_at or self._hub.closing.is_set()

    def __iter__(self) -> Iterator[Event | Comment]:
        user, hub, events = self.user, self._hub, self._log
        try:
            yield Comment(f"retention {event_log.RETENTION_SECONDS} s: reconnect with the last id "
                          "within it to get what you missed, else event: reset")
            position, reset = self._read(lambda: events.resume(user, self._last_event_id))
            if reset:
                yield Event(event_log.event_id(position), "reset", "{}")
            rung = True  # read once at the start
            while not self._over():  # checked before every read: a stream sending pages ends too
                if rung:  # only a ring means the log may have grown: an idle stream reads nothing
                    page = self._read(lambda: events.after(user, position))
                    if page and page[0].seq != position + 1:
                        # events after the position were purged meanwhile: the page reloads
                        position = self._read(lambda: events.head(user))
                        yield Event(event_log.event_id(position), "reset", "{}")
                        continue
                    for logged in page:
                        if logged.data is not None:  # else erased: its message was deleted
                            yield Event(event_log.event_id(logged.seq), logged.kind, logged.data)
                        position = logged.seq
                    if event_log.is_full(page):
                        continue  # more to send
                left = self.ends_at - self._clock()
                if left <= 0 or hub.closing.is_set():
                    return
                rung = self._subscription.wait(min(self._ping_seconds, left))
                if not rung and not self._over():
                    yield Comment("ping")
        except Unavailable as error:
            # PostgreSQL is away: end the stream; the page reconnects with its last id, and misses nothing
            log.warning("event stream ended: %s", error)
        finally:
            self.close()
