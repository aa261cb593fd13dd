"""In-memory twins of the adapters the services use, for the fast tier: the users' store
(lib/users.py), the activities' store (lib/activities.py), the event log (lib/event_log.py) and
the token checker (lib/cognito_jwt_token.py). The messages table's twin is tests/memory_table.py.

Each twin does what its adapter does, not what a test would like it to: the contract tests
(tests/stack/test_store_contracts.py) run the same checks against the twin and the real adapter
over PostgreSQL, so that neither can drift. Nothing here is imported by the app.
"""
from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import uuid as uuids
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping

from domain.identity import EmailUnverified, UserConflict, email_key, email_verified, user_of
from domain.live_events import MESSAGE_KINDS, NewEvent
from domain.times import iso
from lib import event_log
from lib.blocks import BLOCKS_PER_USER, Between
from lib.cognito_jwt_token import TokenError
from lib.event_listener import EventHub
from lib.event_log import LoggedEvent


# -- users ------------------------------------------------------------------------------------------
class MemoryUsers:
    """lib.users.UserStore's twin: users by uuid, handles and emails compared in any case."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []  # in the order they were made (the oldest first)
        self.lock = threading.Lock()
        self.activities: MemoryActivities | None = None  # set by the MemoryActivities over these users

    def add(self, handle: str, display_name: str | None = None, email: str | None = None,
            cognito_user_id: str | None = None) -> dict[str, Any]:
        """A user as a seed would write one: {uuid, display_name, handle}."""
        row = {"uuid": str(uuids.uuid4()), "display_name": display_name or handle.title(), "handle": handle,
               "email": email or f"{handle}@example.test", "cognito_user_id": cognito_user_id, "bio": None}
        with self.lock:
            self.rows.append(row)
        return self._short(row)

    @staticmethod
    def _short(row: Mapping[str, Any]) -> dict[str, Any]:
        return {"uuid": row["uuid"], "display_name": row["display_name"], "handle": row["handle"]}

    def by_identity(self, cognito_user_id: str) -> dict[str, Any] | None:
        found = [r for r in self.rows if r["cognito_user_id"] == cognito_user_id]
        return self._short(found[0]) if found else None

    def by_handle(self, handle: str) -> dict[str, Any] | None:
        found = [r for r in self.rows if r["handle"].lower() == handle.lower()]
        return self._short(found[0]) if found else None

    def everyone(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "bio"} for r in sorted(self.rows, key=lambda r: r["handle"])]

    def profile(self, handle: str) -> dict[str, Any] | None:
        found = [r for r in self.rows if r["handle"].lower() == handle.lower()]
        if not found:
            return None
        row = found[0]
        cruds = len(self.activities.by_user(row["handle"], 10_000)) if self.activities is not None else 0
        return {"uuid": row["uuid"], "handle": row["handle"], "display_name": row["display_name"], "bio": row["bio"],
                "cognito_user_uuid": row["cognito_user_id"], "cruds_count": cruds}

    def update_profile(self, uuid: str, display_name: str | None, bio: str | None) -> dict[str, Any] | None:
        with self.lock:
            for row in self.rows:
                if row["uuid"] == uuid:
                    row["display_name"] = display_name if display_name is not None else row["display_name"]
                    row["bio"] = bio if bio is not None else row["bio"]
                    return {"uuid": uuid, "handle": row["handle"], "display_name": row["display_name"], "bio": row["bio"]}
        return None

    def names_of(self, uuids: list[str]) -> dict[str, dict[str, str]]:
        wanted = set(uuids)
        return {r["uuid"]: self._short(r) for r in self.rows if r["uuid"] in wanted}

    def link(self, uuid: str, cognito_user_id: str, replace: bool = False) -> bool:
        with self.lock:
            if any(r["cognito_user_id"] == cognito_user_id and r["uuid"] != uuid for r in self.rows):
                return False
            for row in self.rows:
                if row["uuid"] == uuid and (row["cognito_user_id"] is None or replace):
                    row["cognito_user_id"] = cognito_user_id
                    return True
            return False

    def create(self, attributes: Mapping[str, Any]) -> str:
        user = user_of(attributes)
        with self.lock:
            found = [r for r in self.rows if r["cognito_user_id"] == user["sub"]]
            if found:
                return found[0]["uuid"]
            if not email_verified(attributes):
                raise EmailUnverified(f"the email {user['email']} is not verified")
            holders = [r for r in self.rows if email_key(r["email"]) == email_key(user["email"])]
            if holders and holders[0]["cognito_user_id"] is None:
                holders[0]["cognito_user_id"] = user["sub"]
                return holders[0]["uuid"]
            if holders:
                raise UserConflict("email_taken", f"the email {user['email']} already has a Cruddur account")
            if any(r["handle"].lower() == user["handle"].lower() for r in self.rows):
                raise UserConflict("handle_taken", f"the handle {user['handle']} is taken: choose another")
            row = {"uuid": str(uuids.uuid4()), "display_name": user["display_name"], "handle": user["handle"],
                   "email": user["email"], "cognito_user_id": user["sub"], "bio": None}
            self.rows.append(row)
            return row["uuid"]


# -- activities --------------------------------------------------------------------------------------
@dataclass
class _Activity:
    uuid: str
    user: dict[str, Any]
    message: str
    created_at: datetime
    expires_at: datetime | None
    reply_to: str | None = None
    replies: list["_Activity"] = field(default_factory=list)



class MemoryBlocks:
    """lib.blocks.BlockStore's twin over MemoryUsers: blocks by (blocker, blocked), each with the
    time it was made."""

    def __init__(self, users: MemoryUsers, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.users, self.clock = users, clock
        self.made: dict[tuple[str, str], datetime] = {}
        self.lock = threading.Lock()

    def _user(self, uuid: str) -> dict[str, Any] | None:
        return next((r for r in self.users.rows if r["uuid"] == uuid), None)

    def block(self, blocker: str, blocked: str, most: int = BLOCKS_PER_USER) -> dict[str, Any] | None:
        target = self._user(blocked)
        if target is None or self._user(blocker) is None:
            return None
        with self.lock:
            if (blocker, blocked) not in self.made and sum(1 for b, _ in self.made if b == blocker) < most:
                self.made[(blocker, blocked)] = self.clock()
            at = self.made.get((blocker, blocked))
        return {"handle": target["handle"], "display_name": target["display_name"],
                "blocked_at": iso(at) if at else None}

    def unblock(self, blocker: str, blocked: str) -> None:
        with self.lock:
            self.made.pop((blocker, blocked), None)

    def blocked_by(self, blocker: str) -> list[dict[str, Any]]:
        with self.lock:
            mine = [(at, self._user(blocked)) for (b, blocked), at in self.made.items() if b == blocker]
        mine.sort(key=lambda pair: (-pair[0].timestamp(), pair[1]["handle"]))
        return [{"handle": u["handle"], "display_name": u["display_name"], "blocked_at": iso(at)} for at, u in mine]

    def between(self, a: str, b: str) -> Between:
        with self.lock:
            return Between((a, b) in self.made, (b, a) in self.made)

    def blocked_sets(self, users: list[str]) -> dict[str, frozenset[str]]:
        with self.lock:
            return {u: frozenset(blocked for blocker, blocked in self.made if blocker == u) for u in users}


class MemoryActivities:
    """lib.activities.ActivityStore's twin: cruds and replies as the statements of
    db/sql/activities/ give them (the fields the contract reads), newest first along
    (created_at, uuid)."""

    def __init__(self, users: MemoryUsers, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.users, self.clock = users, clock
        users.activities = self  # a profile counts its user's cruds, as the SQL does
        self.items: dict[str, _Activity] = {}
        self._ticks = itertools.count()

    def _now(self) -> datetime:
        # distinct times, as PostgreSQL's now() of separate transactions are
        return self.clock() + timedelta(microseconds=next(self._ticks))

    def _json(self, a: _Activity, with_replies: bool = True) -> dict[str, Any]:
        item = {"uuid": a.uuid, "display_name": a.user["display_name"], "handle": a.user["handle"],
                "message": a.message, "replies_count": len(a.replies), "reposts_count": 0,
                "likes_count": 0, "reply_to_activity_uuid": a.reply_to,
                "expires_at": iso(a.expires_at) if a.expires_at else None,
                "created_at": iso(a.created_at)}
        if with_replies:
            item["replies"] = [self._json(r, False) for r in sorted(a.replies, key=lambda r: (r.created_at, r.uuid))
                               if self._live(r)]
        return item

    def _live(self, a: _Activity) -> bool:
        return a.expires_at is None or a.expires_at > self.clock()

    def _page(self, chosen: Iterable[_Activity], limit: int, after: tuple[str, str] | None,
              with_replies: bool = True) -> list[dict[str, Any]]:
        ordered = sorted(chosen, key=lambda a: (a.created_at, a.uuid), reverse=True)
        if after is not None and after[0] != "infinity":
            at, key = datetime.fromisoformat(after[0]), after[1]
            ordered = [a for a in ordered if (a.created_at, a.uuid) < (at, key)]
        return [self._json(a, with_replies) for a in ordered[:limit + 1]]

    def _cruds(self) -> list[_Activity]:
        return [a for a in self.items.values() if a.reply_to is None and self._live(a)]

    def home(self, limit: int, after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        return self._page(self._cruds(), limit, after)

    def by_user(self, handle: str, limit: int, after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        return self._page([a for a in self._cruds() if a.user["handle"].lower() == handle.lower()], limit, after)

    def notifications(self, user_uuid: str, handle: str, limit: int,
                      after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        replies = [a for a in self.items.values() if a.reply_to and a.user["handle"] != handle
                   and self.items[a.reply_to].user["uuid"] == user_uuid
                   and self._live(a) and self._live(self.items[a.reply_to])]
        return self._page(replies, limit, after, with_replies=False)

    def search(self, term: str, limit: int, after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        return self._page([a for a in self._cruds() if term.lower() in a.message.lower()], limit, after)

    def show(self, activity_uuid: str) -> dict[str, Any] | None:
        found = self.items.get(activity_uuid)
        return self._json(found) if found is not None and self._live(found) else None

    def of_handle(self, handle: str, activity_uuid: str) -> dict[str, Any] | None:
        found = self.items.get(activity_uuid)
        if found is None or not self._live(found) or found.user["handle"].lower() != handle.lower():
            return None
        return self._json(found)

    def _user(self, user_uuid: str) -> dict[str, Any]:
        return next(MemoryUsers._short(r) for r in self.users.rows if r["uuid"] == user_uuid)

    def create(self, user_uuid: str, text: str, lifetime: str) -> str:
        amount, unit = lifetime.split()
        span = timedelta(**{unit if unit.endswith("s") else unit + "s": int(amount)})
        now = self._now()
        made = _Activity(str(uuids.uuid4()), self._user(user_uuid), text, now, now + span)
        self.items[made.uuid] = made
        return made.uuid

    def reply(self, user_uuid: str, text: str, parent_uuid: str) -> str | None:
        parent = self.items.get(parent_uuid)
        if parent is None or not self._live(parent):
            return None
        made = _Activity(str(uuids.uuid4()), self._user(user_uuid), text, self._now(), None, parent.uuid)
        self.items[made.uuid] = made
        parent.replies.append(made)
        return made.uuid


# -- the event log --------------------------------------------------------------------------------
class MemoryEventLog:
    """lib.event_log.EventLog's twin: numbered events per user, duplicates (by key) skipped,
    deleted messages' texts erased, single-use tickets that expire."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        # user -> [seq, kind, data (None: erased), key, the message it shows]
        self.events: dict[str, list[list[Any]]] = {}
        self.erased: set[str] = set()
        self.heads: dict[str, int] = {}
        self.tickets: dict[str, tuple[str, float, float]] = {}  # ticket -> (user, trusted until, expires)
        self.lock = threading.Lock()

    def append(self, events: Iterable[NewEvent]) -> dict[str, int]:
        heads: dict[str, int] = {}
        events = list(events)
        with self.lock:
            for ref in {event.erases for event in events if event.erases}:
                self.erased.add(ref)
                for logged in self.events.values():
                    for entry in logged:
                        if entry[4] == ref:
                            entry[2] = None
            current: dict[str, str] = {}  # an edited message -> its data as it is now
            for event in event_log.latest_edits(events):
                of_message = [entry for logged in self.events.values() for entry in logged
                              if entry[4] == event.shows and entry[1] in MESSAGE_KINDS and entry[2] is not None]
                newest = max(of_message, key=lambda entry: json.loads(entry[2]).get("edited_at") or "", default=None)
                ours = event.data.get("edited_at") or ""
                if newest is not None and (json.loads(newest[2]).get("edited_at") or "") > ours:
                    current[event.shows] = newest[2]
                    continue
                current[event.shows] = json.dumps(event.data)
                for entry in of_message:
                    if (json.loads(entry[2]).get("edited_at") or "") < ours:
                        entry[2] = current[event.shows]
            for event in events:
                user = str(event.user_uuid)
                logged = self.events.setdefault(user, [])
                if any(entry[3] == event.key for entry in logged):
                    continue
                seq = self.heads.get(user, 0) + 1
                data = (None if event.shows in self.erased else
                        current[event.shows] if event.shows in current and event.kind in MESSAGE_KINDS
                        else json.dumps(event.data))
                logged.append([seq, event.kind, data, event.key, event.shows])
                self.heads[user] = heads[user] = seq
        return heads

    def forget_until(self, user_uuid: str, seq: int) -> None:
        """What a purge does to a user's log: the events up to `seq` are gone."""
        with self.lock:
            self.events[user_uuid] = [e for e in self.events.get(user_uuid, []) if e[0] > seq]

    def head(self, user_uuid: str) -> int:
        return self.heads.get(user_uuid, 0)

    def after(self, user_uuid: str, seq: int, limit: int = event_log.PAGE,
              max_bytes: int = event_log.PAGE_BYTES) -> list[LoggedEvent]:
        page, size = [], 0
        for s, kind, data, *_ in self.events.get(user_uuid, []):
            if s <= seq:
                continue
            if len(page) >= limit or size >= max_bytes:
                break
            page.append(LoggedEvent(s, kind, data))
            size += len(data.encode()) if data else 0
        return page

    def resume(self, user_uuid: str, last_event_id: str | None) -> tuple[int, bool]:
        last = self.head(user_uuid)
        if last_event_id is None:
            return last, False
        if not last_event_id.isascii() or not last_event_id.isdigit() or len(last_event_id) > 18 \
                or int(last_event_id) > last:
            return last, True
        seen = int(last_event_id)
        if seen == last:
            return seen, False
        following = self.after(user_uuid, seen, limit=1)
        if not following or following[0].seq != seen + 1:
            return last, True
        return seen, False

    def new_ticket(self, user_uuid: str, trusted_until: float, most: int) -> str | None:
        with self.lock:
            now = self.clock()
            held = [t for t, (user, _, expires) in self.tickets.items() if user == user_uuid and expires > now]
            if len(held) >= most:
                return None
            ticket = secrets.token_urlsafe(32)
            self.tickets[ticket] = (user_uuid, trusted_until, min(now + event_log.TICKET_SECONDS, trusted_until))
            return ticket

    def claim_ticket(self, ticket: str) -> tuple[str, float] | None:
        if not ticket or len(ticket) > 100:
            return None
        with self.lock:
            found = self.tickets.pop(ticket, None)
        if found is None:
            return None
        user, trusted_until, expires = found
        now = self.clock()
        return (user, trusted_until) if expires > now and trusted_until > now else None


# -- tokens -----------------------------------------------------------------------------------------
class FakeTokens:
    """lib.cognito_jwt_token.CognitoJwtToken's interface over a table of tokens: a token is valid
    while listed (its claims), and trusted for `trust_seconds` at a time."""

    def __init__(self, clock: Callable[[], float] = time.time, trust_seconds: float = 300.0):
        self.claims: dict[str, dict[str, Any]] = {}
        self.clock, self.trust_seconds = clock, trust_seconds

    def issue(self, sub: str) -> str:
        token = f"token-{secrets.token_hex(8)}"
        self.claims[token] = {"sub": sub, "token_use": "access"}
        return token

    def revoke(self, token: str) -> None:
        self.claims.pop(token, None)

    def verify(self, token: str) -> dict[str, Any]:
        if token not in self.claims:
            raise TokenError("token_invalid", detail="not a token of this pool")
        return self.claims[token]

    def verify_for_a_while(self, token: str) -> tuple[dict[str, Any], float]:
        return self.verify(token), self.clock() + self.trust_seconds


# -- the live-event hub ------------------------------------------------------------------------------
def quiet_hub(**caps: Any) -> EventHub:
    """A real EventHub whose listener never starts (no database): rings are made by hand, by
    `ring`."""
    hub = EventHub("postgresql://unused", connect=lambda *a, **k: threading.Event().wait(), **caps)
    hub._thread = threading.current_thread()  # as if listening already
    return hub


def ring(hub: EventHub, user_uuid: str) -> None:
    """What the listener does on a NOTIFY for the user: wake their streams."""
    hub._ring(user_uuid)
