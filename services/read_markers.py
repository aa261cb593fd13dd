"""Read markers and unread counts (the rule: domain/unread.py; the store keeps them:
lib/conversations/read_markers.py)."""
from __future__ import annotations

from typing import Any

from domain.errors import MalformedRequest
from lib.conversations.store import ConversationStore
from services import validation
from services.membership import require_participant


class MarkRead:
    @staticmethod
    def run(conversations: ConversationStore, caller: dict[str, Any], message_group_uuid: str,
            body: Any) -> dict[str, int]:
        """Move the caller's read marker forward to `up_to` (a message's created_at; the newest
        message without it), never back. Answers the conversation's unread count after it."""
        group = validation.canonical_uuid(message_group_uuid, not_found=True)
        require_participant(conversations, group, caller["uuid"])
        if body is not None and not isinstance(body, dict):
            raise MalformedRequest("body_invalid", detail="the body must be a JSON object")
        up_to = validation.message_time(body["up_to"]) if body and body.get("up_to") is not None else None
        return {"unread_count": conversations.mark_read(group, str(caller["uuid"]), up_to)}


class UnreadSummary:
    @staticmethod
    def run(conversations: ConversationStore, caller: dict[str, Any]) -> dict[str, int]:
        """How many conversations have unread messages, and how many messages in all (each
        conversation's shown count)."""
        conversations, messages = conversations.unread_summary(str(caller["uuid"]))
        return {"conversations": conversations, "messages": messages}
