"""Read markers and unread counts in the table: the one place they are read, counted and written.

Each participant's group row carries their read marker (`read_up_to`, the created_at of the last
message they have read) and `unread_count`. What they must be is the domain's rule
(domain/unread.py); here they are counted from the messages and written, by the API's "mark
read" and by the stream Lambda's row mover (stream.py) alike, each write one conditional update
that holds only while the row still carries the marker it was read with."""
from __future__ import annotations

from typing import Any, Mapping

from domain import unread
from domain.errors import Unavailable
from lib.conversations import layout
from lib.conversations.rows import group_rows, newest_row_per_group, rows_of
from lib.ddb import Ddb, KeyTaken, WriteConflict, key_of

# Attempts of a mark when the row moves or is marked meanwhile.
ATTEMPTS = 4


def count_unread(table: Ddb, group: str, reader_uuid: str, after: str, up_to: str) -> int:
    """The reader's unread messages of the group with after < sk <= up_to (domain/unread.py's
    count), deleted ones left out: a consistent Query, oldest first, that stops at the cap."""
    if after >= up_to:
        return 0
    items = table.query_items(layout.message_pk(group), sk_from=after or " ", sk_to=up_to,
                              consistent=True, attributes=("sk", "user_uuid"), where=layout.NOT_DELETED)
    return unread.count(((item["sk"], item.get("user_uuid", "")) for item in items), str(reader_uuid), after)


def write(table: Ddb, row: Mapping[str, Any], group: str, marker: str, count: int) -> None:
    """Give the row its owner's marker and count, only if it is still this group's and still
    carries the marker and count it was read with (a deletion recounts: stream.py); KeyTaken
    (with the row as it is now) otherwise."""
    table.update_if(key_of(row), {"read_up_to": marker or None, "unread_count": unread.capped(count)},
                    as_read(row, group))


def as_read(row: Mapping[str, Any], group: str) -> dict[str, Any]:
    """The expectation "the row is still this group's and carries the marker and count it was
    read with", exactly (None: absent; rows written before this code may hold an empty marker),
    for a conditional write of the row."""
    return {"message_group_uuid": group, "read_up_to": row.get("read_up_to"),
            "unread_count": row.get("unread_count")}


def newest_message(table: Ddb, group: str) -> str | None:
    """The created_at of the group's newest message (a consistent read), None without any."""
    page = table.query(layout.message_pk(group), limit=1, newest_first=True, consistent=True,
                       attributes=("sk",))
    return page.items[0]["sk"] if page.items else None


def own_row(table: Ddb, index: str, me: str, group: str, settled: bool) -> dict[str, Any] | None:
    """The caller's newest row of the group, as the table holds it now. The index finds its key
    (it may lag: show a row as it was, or one that has moved since), a consistent GetItem reads
    it; when that was not good enough (`settled`, or the row is gone), the caller's rows are read
    from the table itself."""
    if not settled:
        shown = [r for r in group_rows(table, group, index) if r["pk"] == layout.group_pk(me)]
        if shown:
            newest = max(shown, key=lambda r: r["sk"])
            row = table.get({"pk": newest["pk"], "sk": newest["sk"]})
            if row is not None and row.get("message_group_uuid") == group:
                return row
    mine = rows_of(table, me, group)
    return mine[-1] if mine else None


def mark_read(table: Ddb, index: str, group: str, reader_uuid: str, up_to: str | None) -> int:
    """Move the reader's marker forward to `up_to` (the newest message when None), never back.
    A marker past the newest message is clamped to it (a far-future marker would mute the
    conversation for good, as markers never move back). The conversation's unread count after."""
    me = str(reader_uuid)
    unchecked = up_to is not None  # the client's, not yet clamped
    if up_to is None:
        up_to = newest_message(table, group)
    for attempt in range(ATTEMPTS):
        row = own_row(table, index, me, group, settled=attempt > 0)
        if row is None:
            # The conversation's rows are not written yet (its first message is on its way).
            raise Unavailable("conversation_settling", detail="try again in a moment")
        if unchecked and up_to > row["sk"]:  # type: ignore[operator]
            # Past the row's last message: one the stream has not applied yet, or a time no
            # message has.
            newest = newest_message(table, group)
            up_to = min(up_to, newest) if newest else None  # type: ignore[type-var]
            unchecked = False
        if up_to is None or up_to <= row.get("read_up_to", ""):
            return layout.unread_of(row)  # never back
        count = count_unread(table, group, me, up_to, row["sk"])
        try:
            write(table, row, group, up_to, count)
            return count
        except KeyTaken:
            continue  # moved or marked meanwhile: read the row again, from the table
    raise WriteConflict(reason="the row kept changing")


def unread_summary(table: Ddb, user_uuid: str) -> tuple[int, int]:
    """(conversations with unread messages, unread messages in all: each conversation's shown
    count), from one Query of the user's rows (further pages only past 1 MB of rows)."""
    rows = table.query_items(layout.group_pk(user_uuid), newest_first=True,
                             attributes=("sk", "message_group_uuid", "unread_count"))
    counts = [layout.unread_of(row) for row in newest_row_per_group(rows)]
    counts = [c for c in counts if c > 0]
    return len(counts), sum(counts)
