"""Conversations and messages as the HTTP contract gives them (../shared/CONTRACT.md): the API's
answers and the live events' payloads are made here alike."""
from __future__ import annotations

from typing import Any

from domain.conversations import Conversation, Message


def message_json(message: Message) -> dict[str, str | None]:
    """A message as pattern A and the POST reply give it."""
    return {
        "uuid": message.uuid,
        "display_name": message.display_name,
        "handle": message.handle,
        "message": message.text,
        "created_at": message.created_at,
        "edited_at": message.edited_at,
    }


def group_json(conversation: Conversation) -> dict[str, Any]:
    """A conversation as pattern B gives it."""
    return {
        "uuid": conversation.message_group_uuid,
        "display_name": conversation.display_name,
        "handle": conversation.handle,
        "message": conversation.last_message,
        "created_at": conversation.last_message_at,
        "unread_count": conversation.unread_count,
    }
