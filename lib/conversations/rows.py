"""Reading a conversation's rows (each participant's group row, pk GRP#<owner>): through the
index, which may lag, and from the table itself, which does not. Reads only: what is written to
the rows is sending.py's, read_markers.py's and stream.py's."""
from __future__ import annotations

from typing import Any, Iterable

from lib.conversations import layout
from lib.ddb import Ddb


class IndexBehind(RuntimeError):
    """The index does not show yet what the table holds: try again later."""


def group_rows(table: Ddb, group: str, index: str = layout.GSI_NAME) -> list[dict[str, Any]]:
    """Both participants' rows of a group, through the GSI (group rows are its only items). The
    index is eventually consistent: it may not show a row yet, or still show one that has moved."""
    return table.query_index(index, "message_group_uuid", group)


def rows_of(table: Ddb, owner_uuid: str, group: str, since: str = "") -> list[dict[str, Any]]:
    """`owner`'s rows of the group with sk >= `since`, oldest first, from the table itself
    (consistently): what the index does not show yet. Reads the owner's partition from that
    time on: the rare case."""
    return list(table.query_items(layout.group_pk(owner_uuid), sk_from=since or None,
                                  consistent=True, where={"message_group_uuid": group}))


def has_row(table: Ddb, user: str, group: str) -> bool:
    """Whether `user` has a row for `group`, read from the table itself (consistently)."""
    if not user:
        return False
    found = table.query_items(layout.group_pk(user), consistent=True,
                              where={"message_group_uuid": group}, attributes=("pk",))
    return next(found, None) is not None


def newest_row_per_group(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
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
