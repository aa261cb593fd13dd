"""Read markers and unread counts.

Each participant's group row carries their read marker (`read_up_to`, the created_at of the
last message they have read) and `unread_count`: the other participant's messages after the
marker, up to the row's own last message. The stream Lambda keeps both in the row it moves with
every message (sending marks read for the sender); marking read is one conditional update of the
caller's row. Messages the stream has not applied yet are counted once it does."""
from __future__ import annotations

from typing import Any

from lib import ddb as layout
from lib.ddb import KeyTaken, WriteConflict
from lib.errors import MalformedRequest, Unavailable
from services import validation
from services.backend import Backend
from services.membership import require_participant
from services.message_groups import newest_row_per_group
from lib.layout import UNREAD_CAP
from services.shapes import unread

# Attempts of a mark when the row moves or is marked meanwhile.
ATTEMPTS = 4


class MarkRead:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], message_group_uuid: str,
            body: Any) -> dict[str, int]:
        """Move the caller's read marker forward to `up_to` (a message's created_at; the newest
        message without it), never back. Answers the conversation's unread count after it."""
        group = validation.canonical_uuid(message_group_uuid, not_found=True)
        require_participant(backend, group, caller["uuid"])
        if body is not None and not isinstance(body, dict):
            raise MalformedRequest("body_invalid", detail="the body must be a JSON object")
        unchecked = bool(body) and body.get("up_to") is not None  # the client's, not yet clamped
        up_to = validation.message_time(body["up_to"]) if unchecked else newest_message(backend, group)
        me = str(caller["uuid"])
        for attempt in range(ATTEMPTS):
            row = own_row(backend, me, group, settled=attempt > 0)
            if row is None:
                # The conversation's rows are not written yet (its first message is on its way).
                raise Unavailable("conversation_settling", detail="try again in a moment")
            if unchecked and up_to > row["sk"]:
                # Past the row's last message: a message the stream has not applied yet, or a time
                # no message has (a far-future marker would mute the conversation for good, as
                # markers never move back). Clamped to the newest message there is.
                newest = newest_message(backend, group)
                up_to = min(up_to, newest) if newest else None
                unchecked = False
            if up_to is None or up_to <= row.get("read_up_to", ""):
                return {"unread_count": unread(row)}  # never back
            count = backend.ddb.count_unread(group, me, up_to, row["sk"], UNREAD_CAP)
            try:
                backend.ddb.mark_read(row, up_to, count)
                return {"unread_count": min(count, UNREAD_CAP)}
            except KeyTaken:
                continue  # moved or marked meanwhile: read the row again, from the table
        raise WriteConflict(reason="the row kept changing")


def newest_message(backend: Backend, group: str) -> str | None:
    """The created_at of the group's newest message (a consistent read), None without any."""
    page = backend.ddb.messages_page(group, 1, ConsistentRead=True, **layout.projection(("sk",)))
    return page.items[0]["sk"] if page.items else None


def own_row(backend: Backend, me: str, group: str, settled: bool) -> dict[str, Any] | None:
    """The caller's newest row of the group, as the table holds it now. The index finds its key
    (it may lag: show a row as it was, or one that has moved since), a consistent GetItem reads
    it; when that was not good enough (`settled`, or the row is gone), the caller's rows are read
    from the table itself."""
    if not settled:
        shown = [r for r in backend.ddb.group_rows(group) if r["pk"] == layout.group_pk(me)]
        if shown:
            newest = max(shown, key=lambda r: r["sk"])
            row = backend.ddb.get({"pk": newest["pk"], "sk": newest["sk"]})
            if row is not None and row.get("message_group_uuid") == group:
                return row
    mine = backend.ddb.rows_of(me, group)
    return max(mine, key=lambda r: r["sk"]) if mine else None


class UnreadSummary:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any]) -> dict[str, int]:
        """How many conversations have unread messages, and how many messages in all (each
        conversation's shown count), from one Query of the caller's rows."""
        counts = [unread(row) for row in newest_row_per_group(backend.ddb.unread_rows(caller["uuid"]))]
        counts = [c for c in counts if c > 0]
        return {"conversations": len(counts), "messages": sum(counts)}
