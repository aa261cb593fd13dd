"""Reads of the messages table that tests use to look at what was stored, as raw items (the
store's own reads give domain values; a test of the layout wants the items themselves)."""
from __future__ import annotations

from typing import Any

from lib.conversations import layout, table_setup
from lib.conversations.rows import group_rows  # noqa: F401  (a group's rows through the GSI)
from lib.ddb import Ddb, Page


def messages_page(table: Ddb, group: str, limit: int, after: str | None = None) -> Page:
    """A group's message items, newest first."""
    return table.query(layout.message_pk(group), limit=limit, newest_first=True, after_sk=after)


def groups_page(table: Ddb, user_uuid: str, limit: int, after: str | None = None) -> Page:
    """A user's group rows, most recent first."""
    return table.query(layout.group_pk(user_uuid), limit=limit, newest_first=True, after_sk=after)


def create_table(table: Ddb, **options: Any) -> bool:
    return table_setup.create_table(table, **options)
