"""Stored items as the HTTP contract gives them (../shared/CONTRACT.md)."""
from __future__ import annotations

from typing import Any, Mapping


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
    }
