"""Read markers and unread counts: the one place they are counted and moved.

Each participant's group row carries their read marker (`read_up_to`, the created_at of the last
message they have read) and `unread_count`: the other participant's messages after the marker, up
to the row's own last message, counted up to UNREAD_CAP. The stream Lambda keeps both in the row
it moves with every message (sending marks read for the sender; lib/conversations/stream.py);
marking read is one conditional update of the caller's row. Messages the stream has not applied
yet are counted once it does."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lib.conversations import layout
from lib.ddb import KeyTaken, WriteConflict, key_of
from lib.errors import Unavailable

if TYPE_CHECKING:
    from lib.conversations.store import ConversationStore
    from lib.ddb import Ddb

# Attempts of a mark when the row moves or is marked meanwhile.
ATTEMPTS = 4


def count_unread(table: "Ddb", group: str, reader_uuid: str, after: str, up_to: str) -> int:
    """The messages of the group not sent by `reader` with after < sk <= up_to, counted up to
    UNREAD_CAP: a consistent Query, oldest first, that stops there."""
    if after >= up_to:
        return 0
    count = 0
    for item in table.query_items(layout.message_pk(group), sk_from=after or " ", sk_to=up_to,
                                  consistent=True, attributes=("sk", "user_uuid")):
        if item["sk"] > after and item.get("user_uuid") != str(reader_uuid):
            count += 1
            if count >= layout.UNREAD_CAP:
                break
    return count


def newest_message(table: "Ddb", group: str) -> str | None:
    """The created_at of the group's newest message (a consistent read), None without any."""
    page = table.query(layout.message_pk(group), limit=1, newest_first=True, consistent=True,
                       attributes=("sk",))
    return page.items[0]["sk"] if page.items else None


def group_rows(table: "Ddb", group: str, index: str = layout.GSI_NAME) -> list[dict[str, Any]]:
    """Both participants' rows of a group, through the GSI (group rows are its only items). The
    index is eventually consistent: it may not show a row yet, or still show one that has moved."""
    return table.query_index(index, "message_group_uuid", group)


def rows_of(table: "Ddb", owner_uuid: str, group: str, since: str = "") -> list[dict[str, Any]]:
    """`owner`'s rows of the group with sk >= `since`, oldest first, from the table itself
    (consistently): what the index does not show yet. Reads the owner's partition from that
    time on: the rare case."""
    return list(table.query_items(layout.group_pk(owner_uuid), sk_from=since or None,
                                  consistent=True, where={"message_group_uuid": group}))


def own_row(store: "ConversationStore", me: str, group: str, settled: bool) -> dict[str, Any] | None:
    """The caller's newest row of the group, as the table holds it now. The index finds its key
    (it may lag: show a row as it was, or one that has moved since), a consistent GetItem reads
    it; when that was not good enough (`settled`, or the row is gone), the caller's rows are read
    from the table itself."""
    if not settled:
        shown = [r for r in store.group_rows(group) if r["pk"] == layout.group_pk(me)]
        if shown:
            newest = max(shown, key=lambda r: r["sk"])
            row = store.table.get({"pk": newest["pk"], "sk": newest["sk"]})
            if row is not None and row.get("message_group_uuid") == group:
                return row
    mine = rows_of(store.table, me, group)
    return mine[-1] if mine else None


def mark_read(store: "ConversationStore", group: str, reader_uuid: str, up_to: str | None) -> int:
    """Move the reader's marker forward to `up_to` (the newest message when None), never back.
    A marker past the newest message is clamped to it (a far-future marker would mute the
    conversation for good, as markers never move back). The conversation's unread count after."""
    me = str(reader_uuid)
    unchecked = up_to is not None  # the client's, not yet clamped
    if up_to is None:
        up_to = newest_message(store.table, group)
    for attempt in range(ATTEMPTS):
        row = own_row(store, me, group, settled=attempt > 0)
        if row is None:
            # The conversation's rows are not written yet (its first message is on its way).
            raise Unavailable("conversation_settling", detail="try again in a moment")
        if unchecked and up_to > row["sk"]:  # type: ignore[operator]
            # Past the row's last message: one the stream has not applied yet, or a time no
            # message has.
            newest = newest_message(store.table, group)
            up_to = min(up_to, newest) if newest else None  # type: ignore[type-var]
            unchecked = False
        if up_to is None or up_to <= row.get("read_up_to", ""):
            return layout.unread_of(row)  # never back
        count = count_unread(store.table, group, me, up_to, row["sk"])
        try:
            store.table.update_if(key_of(row), {"read_up_to": up_to, "unread_count": count},
                                  {"message_group_uuid": group, "read_up_to": row.get("read_up_to")})
            return min(count, layout.UNREAD_CAP)
        except KeyTaken:
            continue  # moved or marked meanwhile: read the row again, from the table
    raise WriteConflict(reason="the row kept changing")


def unread_summary(store: "ConversationStore", user_uuid: str) -> tuple[int, int]:
    """(conversations with unread messages, unread messages in all: each conversation's shown
    count), from one Query of the user's rows (further pages only past 1 MB of rows)."""
    rows = store.table.query_items(layout.group_pk(user_uuid), newest_first=True,
                                   attributes=("sk", "message_group_uuid", "unread_count"))
    counts = [layout.unread_of(row) for row in newest_row_per_group(rows)]
    counts = [c for c in counts if c > 0]
    return len(counts), sum(counts)


def newest_row_per_group(rows: Any) -> list[dict[str, Any]]:
    """The rows (newest first) with only the first, newest, of each group's. The stream Lambda
    moves a row with a put and then a delete, not a transaction (half the capacity): between the
    two, a participant has two rows of one group, and only the newer one is the conversation."""
    seen: set[str] = set()
    newest = []
    for row in rows:
        if row["message_group_uuid"] not in seen:
            seen.add(row["message_group_uuid"])
            newest.append(row)
    return newest
