"""Cruddur's public posts ("cruds") and their replies in PostgreSQL: the activities' store
(tables in db/schema.sql, statements in db/sql/activities/).

Lists are read along an index from a position (the last item's created_at and uuid), one item
more than asked for, so a page costs the same whatever the table holds and says whether another
follows; each crud comes with its replies, oldest first, in the same query."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lib.sql_files import template

if TYPE_CHECKING:
    from lib.db import Db

Activity = dict[str, Any]
# A position in a list: (created_at, uuid) of the last item read, as text.
Position = tuple[str, str]
# Before every possible position: the first page.
FIRST: Position = ("infinity", "ffffffff-ffff-ffff-ffff-ffffffffffff")


class ActivityStore:
    def __init__(self, db: "Db"):
        self.db = db

    def _page(self, listing: str, params: dict[str, Any], limit: int,
              after: Position | None) -> list[Activity]:
        after_at, after_uuid = after or FIRST
        return self.db.query_value(template("activities", listing), {
            **params, "after_at": after_at, "after_uuid": after_uuid, "limit": limit + 1})

    # Each list: up to `limit` + 1 unexpired cruds, newest first, after `after`.
    def home(self, limit: int, after: Position | None = None) -> list[Activity]:
        """Everyone's cruds."""
        return self._page("home", {}, limit, after)

    def by_user(self, handle: str, limit: int, after: Position | None = None) -> list[Activity]:
        """One user's cruds (the handle in any case)."""
        return self._page("user", {"handle": handle}, limit, after)

    def notifications(self, user_uuid: str, handle: str, limit: int,
                      after: Position | None = None) -> list[Activity]:
        """Replies by others to the user's cruds."""
        return self._page("notifications", {"user_uuid": user_uuid, "handle": handle}, limit, after)

    def search(self, term: str, limit: int, after: Position | None = None) -> list[Activity]:
        """Cruds containing `term` in any case; % and _ are taken literally."""
        pattern = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return self._page("search", {"pattern": pattern}, limit, after)

    def show(self, activity_uuid: str) -> Activity | None:
        return self.db.query_value(template("activities", "show"), {"uuid": activity_uuid})

    def of_handle(self, handle: str, activity_uuid: str) -> Activity | None:
        """`show`, only when the activity is that handle's (in any case)."""
        return self.db.query_value(template("activities", "status"), {"uuid": activity_uuid, "handle": handle})

    def create(self, user_uuid: str, text: str, lifetime: str) -> str:
        """A crud by the user, living `lifetime` (a PostgreSQL interval): its uuid."""
        return str(self.db.query_commit(template("activities", "create"), {
            "user_uuid": user_uuid, "message": text, "ttl": lifetime}))

    def reply(self, user_uuid: str, text: str, parent_uuid: str) -> str | None:
        """A reply to an unexpired activity, counted into its replies_count in the same
        statement: its uuid, or None when there is no such parent."""
        created = self.db.query_commit(template("activities", "reply"), {
            "user_uuid": user_uuid, "message": text, "parent_uuid": parent_uuid})
        return str(created) if created is not None else None
