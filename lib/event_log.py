"""Each user's live events: a numbered log in PostgreSQL (tables in db/schema.sql, statements in
db/sql/events/). The one place events are numbered, kept, replayed, and where the tickets that
open a stream are made and taken.

Why numbers, and why PostgreSQL. A page that reconnects says "the last event I saw was 41", and
must get exactly what came after: nothing twice, nothing skipped. That works only if no event is
ever committed behind one a reader has already seen. So each user has a head row; an append locks
it, gives its events the next numbers and commits: another append for that user waits for the
lock and numbers after it. A duplicate (a stream record delivered twice) has the same key as the
event already logged and is skipped, so it takes no number. The commit also sends a NOTIFY, which
PostgreSQL delivers to every listening API process the moment the events are visible: a connected
user who receives nothing costs nothing at all (no polling, no read units).

Everything here takes an open psycopg connection: the API's pool's (lib/db.py) or the events
Lambda's own. The events themselves are the domain's (domain/live_events.py: which, for whom,
and their keys).
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, NamedTuple

from domain.live_events import MESSAGE_KINDS, NewEvent
from lib.sql_files import template

if TYPE_CHECKING:
    import psycopg

# The channel every append notifies, with "<user uuid>:<last number>".
CHANNEL = "cruddur_events"
# How long events are kept for a reconnecting page. As long as the table's stream keeps a record,
# so that a record delivered again however late finds its event still logged (and is skipped).
RETENTION_SECONDS = 24 * 3600
# How long a ticket may wait to be used (the contract allows at most 60).
TICKET_SECONDS = 30
# Events read at a time by a stream: at most PAGE of them, and no more than about PAGE_BYTES of
# their data (one event of any size always fits), so that what a stream holds while its reader is
# slow stays small (a page of 200 messages of emoji would be about 1 MiB).
PAGE = 200
PAGE_BYTES = 32 * 1024
# Rows one purge statement deletes at most (purge runs it again while there are more, within its
# time): a backlog of expired events never makes one long statement.
PURGE_BATCH = 5000
_ID = re.compile(r"[0-9]{1,18}")


class LoggedEvent(NamedTuple):
    seq: int
    kind: str
    data: str | None  # JSON text, as the stream sends it; None once erased (its message was deleted)


def _sql(name: str) -> str:
    return template("events", name)


# -- appending (the events Lambda) -------------------------------------------------------------
def append(conn: "psycopg.Connection", events: Iterable[NewEvent]) -> dict[str, int]:
    """Log `events` in one transaction, in their order, each user's after their last; skip those
    whose key the user's log holds already. The messages a deletion erases lose their text from
    every event that shows it, and any event showing one is logged erased; an edited message's
    earlier events take it as it is now. Returns each user's new last number (users that got an
    event only)."""
    events = list(events)
    by_user: dict[str, dict[str, NewEvent]] = {}
    for event in events:
        by_user.setdefault(str(event.user_uuid), {}).setdefault(event.key, event)
    erased = sorted({event.erases for event in events if event.erases})
    heads: dict[str, int] = {}
    with conn.transaction():
        # The lock on erased_messages first, before any head: one order of locks for all.
        if erased:
            for ref in erased:
                conn.execute(_sql("note_erased"), {"message_ref": ref})
            for ref in erased:  # each its own statement, which sees every append committed before
                conn.execute(_sql("erase"), {"message_ref": ref})
        elif any(event.shows for event in events):
            conn.execute(_sql("lock_erasures"))
        current: dict[str, str] = {}  # an edited message -> its data as it is now
        for event in latest_edits(events):
            ours = event.data.get("edited_at") or ""
            logged = conn.execute(_sql("newest_of_message"), {"message_ref": event.shows,
                                                              "kinds": list(MESSAGE_KINDS)}).fetchone()
            if logged is not None and logged[1] > ours:
                current[event.shows] = logged[0]  # a newer edit is logged: this one came late
                continue
            current[event.shows] = json.dumps(event.data)
            conn.execute(_sql("refresh"), {"message_ref": event.shows, "data": current[event.shows],
                                           "kinds": list(MESSAGE_KINDS), "edited_at": ours})
        for user in sorted(by_user):  # one order of locks for every appender: no deadlock
            seq = conn.execute(_sql("lock_head"), {"user_uuid": user}).fetchone()[0]
            wanted = by_user[user]
            known = {row[0] for row in conn.execute(_sql("known_keys"),
                                                    {"user_uuid": user, "keys": list(wanted)})}
            fresh = [e for key, e in wanted.items() if key not in known]
            if not fresh:
                continue
            rows = [{"user_uuid": user, "seq": seq + i, "kind": e.kind,
                     "data": current[e.shows] if e.shows in current and e.kind in MESSAGE_KINDS
                     else json.dumps(e.data),  # the batch's own message event, edited in it too
                     "event_key": e.key, "shows": e.shows or None} for i, e in enumerate(fresh, 1)]
            with conn.cursor() as cur:
                cur.executemany(_sql("insert"), rows)
            seq += len(fresh)
            conn.execute(_sql("set_head"), {"user_uuid": user, "seq": seq})
            conn.execute(_sql("notify"), {"payload": f"{user}:{seq}"})
            heads[user] = seq
    return heads


def latest_edits(events: Iterable[NewEvent]) -> list[NewEvent]:
    """Of the events that refresh their message, the latest edit of each message."""
    latest: dict[str, NewEvent] = {}
    for event in events:
        if event.refreshes and event.shows and (event.shows not in latest or (event.data.get("edited_at") or "")
                                                > (latest[event.shows].data.get("edited_at") or "")):
            latest[event.shows] = event
    return list(latest.values())


def purge(conn: "psycopg.Connection", keep_seconds: float = RETENTION_SECONDS,
          batch: int = PURGE_BATCH, until: float | None = None,
          clock: Callable[[], float] = time.monotonic) -> int:
    """Delete events past the retention window, by number (what each user keeps runs on without
    a gap: db/sql/events/purge.sql), `batch` rows per statement, until none is left or the
    monotonic time `until` has passed (the rest waits for the next purge). How many went."""
    gone = 0
    while True:
        deleted = conn.execute(_sql("purge"), {"keep_seconds": keep_seconds, "batch": batch}).rowcount
        gone += deleted
        if deleted < batch or (until is not None and clock() >= until):
            conn.execute(_sql("purge_erased"), {"keep_seconds": keep_seconds})
            return gone


# -- reading (the API's streams) -----------------------------------------------------------------
def head(conn: "psycopg.Connection", user_uuid: str) -> int:
    """The user's last event number (0 before their first event)."""
    return int(conn.execute(_sql("head"), {"user_uuid": user_uuid}).fetchone()[0])


def after(conn: "psycopg.Connection", user_uuid: str, seq: int, limit: int = PAGE,
          max_bytes: int = PAGE_BYTES) -> list[LoggedEvent]:
    """The user's events after number `seq`, oldest first, at most `limit` and about `max_bytes`
    of data (at least one event, when there is one); erased ones too, without data."""
    rows = conn.execute(_sql("after"), {"user_uuid": user_uuid, "after": seq, "limit": limit,
                                        "max_bytes": max_bytes})
    return [LoggedEvent(int(s), kind, data) for s, kind, data in rows]


def is_full(page: list[LoggedEvent], limit: int = PAGE, max_bytes: int = PAGE_BYTES) -> bool:
    """Whether `after` stopped at its bounds, so that more events may follow this page."""
    return len(page) >= limit or sum(len(e.data.encode()) for e in page if e.data) >= max_bytes


def event_id(seq: int) -> str:
    """The id a stream gives an event (opaque to the page, which only sends it back)."""
    return str(seq)


def resume(conn: "psycopg.Connection", user_uuid: str, last_event_id: str | None) -> tuple[int, bool]:
    """Where a stream starts: (the number after which it sends, whether it must send `reset`).
    Without a last id: from now on. With one: right after it, if every event since is still
    kept; else (purged, or an id this log never gave) from now on, with a reset."""
    last = head(conn, user_uuid)
    if last_event_id is None:
        return last, False
    if not _ID.fullmatch(last_event_id) or int(last_event_id) > last:
        return last, True
    seen = int(last_event_id)
    if seen == last:
        return seen, False
    following = after(conn, user_uuid, seen, limit=1)
    if not following or following[0].seq != seen + 1:
        return last, True  # the events right after it are gone
    return seen, False


# -- tickets ------------------------------------------------------------------------------------
def _hash(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode()).digest()


def new_ticket(conn: "psycopg.Connection", user_uuid: str, trusted_until: float, most: int,
               ticket_seconds: int = TICKET_SECONDS) -> str | None:
    """A ticket that opens one stream of the user's, within `ticket_seconds` and before
    `trusted_until` (epoch seconds: when the token that asked for it expires, or must be checked
    again), when the stream it opens ends too. None when the user holds `most` unused tickets."""
    ticket = secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute(_sql("lock_tickets"), {"user_uuid": user_uuid})
        made = conn.execute(_sql("create_ticket"), {
            "ticket_hash": _hash(ticket), "user_uuid": user_uuid, "token_expires_at": trusted_until,
            "ticket_seconds": ticket_seconds, "most": most}).fetchone()
    return ticket if made else None


def claim_ticket(conn: "psycopg.Connection", ticket: str) -> tuple[str, float] | None:
    """(user uuid, until when the token that bought it is trusted) for a ticket never used and
    unexpired, which it then is no longer; None for any other."""
    if not ticket or len(ticket) > 100:
        return None
    row = conn.execute(_sql("claim_ticket"), {"ticket_hash": _hash(ticket)}).fetchone()
    return (row[0], float(row[1])) if row else None


# -- the log over the API's pool ---------------------------------------------------------------
class EventLog:
    """The functions above, each over a connection of the API's pool (lib/db.py): what the
    services use (tests hold an in-memory twin, tests/fakes.py, to the same contract)."""

    def __init__(self, db: Any):
        self.db = db

    def append(self, events: Iterable[NewEvent]) -> dict[str, int]:
        return self.db.with_connection(lambda conn: append(conn, list(events)))

    def head(self, user_uuid: str) -> int:
        return self.db.with_connection(lambda conn: head(conn, user_uuid))

    def after(self, user_uuid: str, seq: int, limit: int = PAGE, max_bytes: int = PAGE_BYTES) -> list[LoggedEvent]:
        return self.db.with_connection(lambda conn: after(conn, user_uuid, seq, limit=limit, max_bytes=max_bytes))

    def resume(self, user_uuid: str, last_event_id: str | None) -> tuple[int, bool]:
        return self.db.with_connection(lambda conn: resume(conn, user_uuid, last_event_id))

    def new_ticket(self, user_uuid: str, trusted_until: float, most: int) -> str | None:
        return self.db.with_connection(lambda conn: new_ticket(conn, user_uuid, trusted_until, most))

    def claim_ticket(self, ticket: str) -> tuple[str, float] | None:
        return self.db.with_connection(lambda conn: claim_ticket(conn, ticket))
