"""Pattern B: the caller's conversations, most recent first."""
from __future__ import annotations

from typing import Any

from services.backend import Backend
from services.pages import page_of
from lib.ddb import projection
from services.shapes import GROUP_ATTRIBUTES, group_json

READ = projection(GROUP_ATTRIBUTES)


class MessageGroups:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], limit: int,
            cursor: str | None = None) -> tuple[list[dict[str, str]], str | None]:
        items, next_cursor = page_of(
            backend, f"B:{caller['uuid']}", limit, cursor,
            lambda n, after: backend.ddb.groups_page(caller["uuid"], n, after, **READ))
        return [group_json(i) for i in newest_row_per_group(items)], next_cursor


def newest_row_per_group(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
