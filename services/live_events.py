"""Live events (../shared/CONTRACT.md, "Live events"): a ticket for the signed-in caller, and the
stream a ticket opens. The log the stream reads is lib/event_log.py; what wakes it,
lib/event_listener.py; what the events are, lib/conversations/events.py."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator, NamedTuple

from lib import event_log
from lib.errors import Unauthenticated, Unavailable
from services.backend import Backend
from services.current_user import CurrentUser

log = logging.getLogger(__name__)

class Event(NamedTuple):
    id: str
    name: str
    data: str  # one line of JSON


class Comment(NamedTuple):
    text: str


class IssueTicket:
    @staticmethod
    def run(backend: Backend, authorization: str | None) -> dict[str, Any]:
        """A single-use ticket that opens one stream of the caller's, good for a few seconds."""
        user, claims = CurrentUser.with_claims(backend, authorization)
        ticket = backend.db.run(lambda conn: event_log.new_ticket(conn, str(user["uuid"]), float(claims["exp"])))
        return {"ticket": ticket, "expires_in": event_log.TICKET_SECONDS}


class OpenStream:
    @staticmethod
    def run(backend: Backend, ticket: str | None, last_event_id: str | None,
            clock: Callable[[], float] = time.time) -> tuple[str, Iterator[Event | Comment]]:
        """(the ticket's user, their stream). The ticket is used up here, before the stream
        starts, so a bad one is a plain 401."""
        claimed = backend.db.run(lambda conn: event_log.claim_ticket(conn, ticket or ""))
        if claimed is None:
            raise Unauthenticated("ticket_invalid",
                                  detail="unknown, used or expired ticket: POST /api/events/ticket for a new one")
        user, token_expires_at = claimed
        # it ends when the token does, or after EVENTS_STREAM_SECONDS, whichever comes first
        ends_at = min(token_expires_at, clock() + backend.settings.events_stream_seconds)
        return user, _stream(backend, user, ends_at, last_event_id, clock)


def _stream(backend: Backend, user: str, ends_at: float, last_event_id: str | None,
            clock: Callable[[], float]) -> Iterator[Event | Comment]:
    hub = backend.live
    # Listening before reading: an event appended meanwhile rings, and is read next.
    subscription = hub.subscribe(user)
    try:
        yield Comment(f"retention {event_log.RETENTION_SECONDS} s: reconnect with the last id "
                      "within it to get what you missed, else event: reset")
        position, reset = backend.db.run(lambda conn: event_log.resume(conn, user, last_event_id))
        if reset:
            yield Event(event_log.event_id(position), "reset", "{}")
        rung = True  # read once at the start
        while True:
            if rung:  # only a ring means the log may have grown: an idle stream reads nothing
                page = backend.db.run(lambda conn: event_log.after(conn, user, position))
                for logged in page:
                    yield Event(event_log.event_id(logged.seq), logged.kind, logged.data)
                    position = logged.seq
                if len(page) == event_log.PAGE:
                    continue  # more to send
            left = ends_at - clock()
            if left <= 0 or hub.closing.is_set():
                return  # the token expired, its time is up, or the process is stopping: the page reconnects
            rung = subscription.wait(min(backend.settings.events_ping_seconds, left))
            if not rung and clock() < ends_at and not hub.closing.is_set():
                yield Comment("ping")
    except Unavailable as error:
        # PostgreSQL is away: end the stream; the page reconnects with its last id, and misses nothing
        log.warning("event stream ended: %s", error)
    finally:
        hub.unsubscribe(subscription)
