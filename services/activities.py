"""Cruddur's public posts ("cruds") and their replies (the activities' store: lib/activities.py).

Lists are pages newest first, resumed from a signed cursor (the last item's created_at and uuid).
Writes act as the caller, never as a handle in a body.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from domain import identity
from domain.cursors import Cursors
from domain.errors import Busy, InvalidInput, MalformedRequest, NotFound
from lib.activities import Activity, ActivityStore, Position
from lib.users import UserStore
from services import validation

# A crud, as the frontend counts it (a direct message's is services/validation.py's
# DIRECT_MESSAGE_MAX_LENGTH).
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
Page = tuple[list[Activity], "str | None"]


def _page(cursors: Cursors, scope: str, cursor: str | None,
          read: Callable[[Position | None], list[Activity]], limit: int) -> Page:
    """One page of `read` and the cursor of the next (None on the last): the store reads one
    item more than asked for, so a cursor is given only when something follows."""
    after = None
    if cursor is not None:
        after_at, _, after_uuid = cursors.decode(scope, cursor).partition("|")
        after = (after_at, after_uuid)
    rows = read(after)
    items = rows[:limit]
    last = items[-1] if items else None
    more = len(rows) > limit and last is not None
    return items, (cursors.encode(scope, f"{last['created_at']}|{last['uuid']}") if more else None)  # type: ignore[index]


def message_text(value: Any) -> str:
    """A crud is 1 to 280 characters after trimming."""
    return validation.text(value, CRUD_MAX_LENGTH, too_long="message_exceed_max_chars")


class HomeActivities:
    @staticmethod
    def run(activities: ActivityStore, cursors: Cursors, limit: int, cursor: str | None = None) -> Page:
        return _page(cursors, "home", cursor, lambda after: activities.home(limit, after), limit)


def _user(handle: str) -> str:
    """`handle`, or NotFound: what cannot be a handle is nobody's."""
    if not identity.is_handle(handle):
        raise NotFound("user_not_found", detail="no such user")
    return handle


def _user_page(activities: ActivityStore, cursors: Cursors, handle: str, limit: int,
               cursor: str | None) -> Page:
    """One page of a user's cruds, for their page in either frontend's shape (the cursor's scope
    is the handle in any case, as the list is)."""
    return _page(cursors, f"user:{handle.lower()}", cursor,
                 lambda after: activities.by_user(handle, limit, after), limit)


class UserActivities:
    @staticmethod
    def run(activities: ActivityStore, users: UserStore, cursors: Cursors, handle: str, limit: int,
            cursor: str | None = None) -> Page:
        """One user's cruds; 404 for a handle nobody has."""
        items, next_cursor = _user_page(activities, cursors, _user(handle), limit, cursor)
        if not items and users.by_handle(handle) is None:
            raise NotFound("user_not_found", detail="no such user")
        return items, next_cursor


class UserProfile:
    @staticmethod
    def run(activities: ActivityStore, users: UserStore, cursors: Cursors, handle: str, limit: int,
            cursor: str | None = None) -> tuple[dict[str, Any], str | None]:
        """The final frontend's profile page, where the week-5 one reads UserActivities' list
        from the same URL: {"profile", "activities"} (one page of them, newest first) and the
        cursor of the next page; 404 for a handle nobody has."""
        profile = users.profile(_user(handle))
        if profile is None:
            raise NotFound("user_not_found", detail="no such user")
        items, next_cursor = _user_page(activities, cursors, handle, limit, cursor)
        return {"profile": profile, "activities": items}, next_cursor


class NotificationsActivities:
    @staticmethod
    def run(activities: ActivityStore, cursors: Cursors, caller: dict[str, Any], limit: int,
            cursor: str | None = None) -> Page:
        """Replies by others to the caller's cruds, newest first."""
        return _page(cursors, f"notifications:{caller['uuid']}", cursor, lambda after: activities.notifications(
            str(caller["uuid"]), caller["handle"], limit, after), limit)


class SearchActivities:
    @staticmethod
    def run(activities: ActivityStore, cursors: Cursors, term: Any, limit: int,
            cursor: str | None = None) -> Page:
        """Cruds containing `term`, case-insensitive; % and _ are taken literally."""
        if not isinstance(term, str) or not term.strip():
            raise InvalidInput("term_blank", detail="give a term to search for")
        term = validation.text(term, 100, too_long="term_too_long", blank="term_blank")
        if len(term) < SEARCH_TERM_MIN_LENGTH:
            raise InvalidInput("term_too_short",
                               detail=f"give at least {SEARCH_TERM_MIN_LENGTH} characters to search for")
        if not SEARCH_SLOTS.acquire(timeout=SEARCH_WAIT_SECONDS):
            raise Busy("search_busy", detail="too many searches right now", retry_after=1)
        try:
            return _page(cursors, f"search:{term}", cursor, lambda after: activities.search(term, limit, after), limit)
        finally:
            SEARCH_SLOTS.release()


class ShowActivity:
    @staticmethod
    def run(activities: ActivityStore, activity_uuid: str) -> Activity:
        uuid_ = validation.canonical_uuid(activity_uuid, not_found=NotFound(
            "activity_not_found", detail="no such activity"))
        activity = activities.show(uuid_)
        if activity is None:
            raise NotFound("activity_not_found", detail="no such activity")
        return activity


class ShowStatus:
    @staticmethod
    def run(activities: ActivityStore, handle: str, activity_uuid: str) -> dict[str, Any]:
        """The final frontend's crud page: {"activity", "replies"} (replies oldest first), for an
        unexpired activity of that handle only."""
        missing = NotFound("activity_not_found", detail="no such activity")
        uuid_ = validation.canonical_uuid(activity_uuid, not_found=missing)
        if not identity.is_handle(handle):
            raise missing
        activity = activities.of_handle(handle, uuid_)
        if activity is None:
            raise missing
        return {"activity": activity, "replies": activity.get("replies", [])}


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MalformedRequest("body_invalid", detail="the body must be a JSON object")
    return body


class CreateActivity:
    @staticmethod
    def run(activities: ActivityStore, caller: dict[str, Any], body: Any) -> Activity:
        """A crud by the caller (a `user_handle` in the body is ignored): the new activity."""
        body = _body(body)
        text = message_text(body.get("message"))
        ttl = body.get("ttl")
        if not isinstance(ttl, str) or ttl not in TTLS:
            raise InvalidInput("ttl_invalid", detail=f"ttl is one of {', '.join(TTLS)}")
        return ShowActivity.run(activities, activities.create(str(caller["uuid"]), text, TTLS[ttl]))


class CreateReply:
    @staticmethod
    def run(activities: ActivityStore, caller: dict[str, Any], activity_uuid: str, body: Any) -> Activity:
        """A reply by the caller to an unexpired activity, counted into its replies_count in the
        same transaction: the new reply."""
        parent = validation.canonical_uuid(activity_uuid, not_found=NotFound(
            "activity_not_found", detail="no such activity"))
        text = message_text(_body(body).get("message"))
        created = activities.reply(str(caller["uuid"]), text, parent)
        if created is None:
            raise NotFound("activity_not_found", detail="no such activity")
        return ShowActivity.run(activities, created)
