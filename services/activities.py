"""Cruddur's public posts ("cruds") and their replies, from PostgreSQL (db/sql/activities/).

Lists are pages newest first, read along an index from a signed cursor (the last item's
created_at and uuid), so a page costs the same whatever the table holds; each crud comes with its
replies, oldest first, in the same query. Writes act as the caller, never as a handle in a body.
"""
from __future__ import annotations

import threading
from typing import Any

from lib.db import template
from lib.errors import Busy, InvalidInput, MalformedRequest, NotFound
from services import validation
from services.backend import Backend
from services.users_short import by_handle

# A crud, as the frontend counts it (a message is services/validation.py's MESSAGE_MAX_LENGTH).
CRUD_MAX_LENGTH = 280
# The frontend's choices of a crud's life.
TTLS = {"30-days": "30 days", "7-days": "7 days", "3-days": "3 days", "1-day": "1 day",
        "12-hours": "12 hours", "3-hours": "3 hours", "1-hour": "1 hour"}
# Search reads the trigram index (db/schema.sql), which needs 3 characters to narrow anything down:
# a shorter term would read every crud.
SEARCH_TERM_MIN_LENGTH = 3
# Searches at once in one process, so that a flood of searches holds at most this many of the
# pool's connections and every other route still gets one. A search waits a moment for a slot
# (clients that search together come in bursts), then is refused (429) rather than queued.
SEARCH_SLOTS = threading.BoundedSemaphore(2)
SEARCH_WAIT_SECONDS = 0.5
# Before every possible position: the first page.
FIRST = ("infinity", "ffffffff-ffff-ffff-ffff-ffffffffffff")


def _page(backend: Backend, scope: str, name: str, params: dict[str, Any], limit: int,
          cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of db/sql/activities/<name>.sql and the cursor of the next (None on the last):
    one item more than asked for is read, so a cursor is given only when something follows."""
    after_at, after_uuid = FIRST
    if cursor is not None:
        after_at, _, after_uuid = backend.cursors.decode(scope, cursor).partition("|")
    rows = backend.db.query_value(template("activities", name), {
        **params, "after_at": after_at, "after_uuid": after_uuid, "limit": limit + 1})
    items = rows[:limit]
    more = len(rows) > limit
    last = items[-1] if items else None
    return items, (backend.cursors.encode(scope, f"{last['created_at']}|{last['uuid']}") if more and last else None)


def message_text(value: Any) -> str:
    """A crud is 1 to 280 characters after trimming."""
    return validation.text(value, CRUD_MAX_LENGTH, too_long="message_exceed_max_chars")


class HomeActivities:
    @staticmethod
    def run(backend: Backend, limit: int, cursor: str | None = None) -> tuple[list[dict], str | None]:
        return _page(backend, "home", "home", {}, limit, cursor)


class UserActivities:
    @staticmethod
    def run(backend: Backend, handle: str, limit: int,
            cursor: str | None = None) -> tuple[list[dict], str | None]:
        """One user's cruds; 404 for a handle nobody has."""
        try:
            validation.handle(handle)
        except InvalidInput:
            raise NotFound("user_not_found", detail="no such user") from None
        items, next_cursor = _page(backend, f"user:{handle}", "user", {"handle": handle}, limit, cursor)
        if not items and by_handle(backend, handle) is None:
            raise NotFound("user_not_found", detail="no such user")
        return items, next_cursor


class NotificationsActivities:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], limit: int,
            cursor: str | None = None) -> tuple[list[dict], str | None]:
        """Replies by others to the caller's cruds, newest first."""
        return _page(backend, f"notifications:{caller['uuid']}", "notifications",
                     {"user_uuid": caller["uuid"], "handle": caller["handle"]}, limit, cursor)


class SearchActivities:
    @staticmethod
    def run(backend: Backend, term: Any, limit: int,
            cursor: str | None = None) -> tuple[list[dict], str | None]:
        """Cruds containing `term`, case-insensitive; % and _ are taken literally."""
        if not isinstance(term, str) or not term.strip():
            raise InvalidInput("term_blank", detail="give a term to search for")
        term = validation.text(term, 100, too_long="term_too_long", blank="term_blank")
        if len(term) < SEARCH_TERM_MIN_LENGTH:
            raise InvalidInput("term_too_short",
                               detail=f"give at least {SEARCH_TERM_MIN_LENGTH} characters to search for")
        pattern = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        if not SEARCH_SLOTS.acquire(timeout=SEARCH_WAIT_SECONDS):
            raise Busy("search_busy", detail="too many searches right now", retry_after=1)
        try:
            return _page(backend, f"search:{term}", "search", {"pattern": pattern}, limit, cursor)
        finally:
            SEARCH_SLOTS.release()


class ShowActivity:
    @staticmethod
    def run(backend: Backend, activity_uuid: str) -> dict[str, Any]:
        uuid_ = validation.canonical_uuid(activity_uuid, not_found=NotFound(
            "activity_not_found", detail="no such activity"))
        activity = backend.db.query_value(template("activities", "show"), {"uuid": uuid_})
        if activity is None:
            raise NotFound("activity_not_found", detail="no such activity")
        return activity


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MalformedRequest("body_invalid", detail="the body must be a JSON object")
    return body


class CreateActivity:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], body: Any) -> dict[str, Any]:
        """A crud by the caller (a `user_handle` in the body is ignored): the new activity."""
        body = _body(body)
        text = message_text(body.get("message"))
        ttl = body.get("ttl")
        if not isinstance(ttl, str) or ttl not in TTLS:
            raise InvalidInput("ttl_invalid", detail=f"ttl is one of {', '.join(TTLS)}")
        created = backend.db.query_commit(template("activities", "create"), {
            "user_uuid": caller["uuid"], "message": text, "ttl": TTLS[ttl]})
        return ShowActivity.run(backend, str(created))


class CreateReply:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], activity_uuid: str, body: Any) -> dict[str, Any]:
        """A reply by the caller to an unexpired activity, counted into its replies_count in the
        same transaction: the new reply."""
        parent = validation.canonical_uuid(activity_uuid, not_found=NotFound(
            "activity_not_found", detail="no such activity"))
        text = message_text(_body(body).get("message"))
        created = backend.db.query_commit(template("activities", "reply"), {
            "user_uuid": caller["uuid"], "message": text, "parent_uuid": parent})
        if created is None:
            raise NotFound("activity_not_found", detail="no such activity")
        return ShowActivity.run(backend, str(created))


