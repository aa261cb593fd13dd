"""Pattern B: the caller's conversations, most recent first."""
from __future__ import annotations

from typing import Any

from domain.contract import group_json
from domain.cursors import Cursors
from lib.conversations.store import ConversationStore
from services.names import Names
from services.pages import page_of


class MessageGroups:
    @staticmethod
    def run(conversations: ConversationStore, names: Names, cursors: Cursors, caller: dict[str, Any],
            limit: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        found, next_cursor = page_of(
            cursors, f"B:{caller['uuid']}", cursor,
            lambda after: conversations.conversations(str(caller["uuid"]), limit, after))
        return [group_json(c) for c in names.on_conversations(found)], next_cursor
