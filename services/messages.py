"""Pattern A: a conversation's latest messages, oldest first, for its participants only."""
from __future__ import annotations

from typing import Any

from domain.contract import message_json
from domain.cursors import Cursors
from lib.conversations.store import ConversationStore
from services import validation
from services.membership import require_participant
from services.names import Names
from services.pages import page_of


class Messages:
    @staticmethod
    def run(conversations: ConversationStore, names: Names, cursors: Cursors, caller: dict[str, Any],
            message_group_uuid: str, limit: int,
            cursor: str | None = None) -> tuple[list[dict[str, str]], str | None]:
        group = validation.canonical_uuid(message_group_uuid, not_found=True)
        require_participant(conversations, group, caller["uuid"])
        messages, next_cursor = page_of(
            cursors, f"A:{caller['uuid']}:{group}", cursor,
            lambda after: conversations.messages(group, limit, after))
        # Read newest first (so the page is the latest), shown oldest first, by current names.
        return [message_json(m) for m in reversed(names.on_messages(messages))], next_cursor
