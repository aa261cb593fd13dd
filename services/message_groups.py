"""Pattern B: the caller's conversations, most recent first."""
from __future__ import annotations

from typing import Any

from services.backend import Backend
from services.pages import page_of
from lib.conversations import group_json


class MessageGroups:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], limit: int,
            cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        conversations, next_cursor = page_of(
            backend, f"B:{caller['uuid']}", cursor,
            lambda after: backend.conversations.conversations(str(caller["uuid"]), limit, after))
        return [group_json(c) for c in conversations], next_cursor
