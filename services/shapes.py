"""Stored items as the HTTP contract gives them (../shared/CONTRACT.md), and the attributes each
shape reads (a list asks DynamoDB for those only)."""
from __future__ import annotations

from typing import Any, Mapping

from lib.layout import UNREAD_CAP

MESSAGE_ATTRIBUTES = ("sk", "message_uuid", "message", "user_display_name", "user_handle")
GROUP_ATTRIBUTES = ("sk", "message_group_uuid", "message", "user_display_name", "user_handle",
                    "unread_count")


def unread(row: Mapping[str, Any]) -> int:
    """A group row's unread count as shown: 0 for a row without one (written before there were
    counts), at most UNREAD_CAP."""
    return min(int(row.get("unread_count") or 0), UNREAD_CAP)


def message_json(item: Mapping[str, Any]) -> dict[str, str]:
    """A message item as pattern A and the POST reply give it."""
    return {
        "uuid": item["message_uuid"],
        "display_name": item["user_display_name"],
        "handle": item["user_handle"],
        "message": item["message"],
        "created_at": item["sk"],
    }


def group_json(item: Mapping[str, Any]) -> dict[str, str]:
    """A group row as pattern B gives it."""
    return {
        "uuid": item["message_group_uuid"],
        "display_name": item["user_display_name"],
        "handle": item["user_handle"],
        "message": item["message"],
        "created_at": item["sk"],
        "unread_count": unread(item),
    }
