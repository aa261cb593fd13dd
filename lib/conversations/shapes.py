"""The store's values as the HTTP contract gives them (../shared/CONTRACT.md): the API's answers
and the live events the events Lambda logs are made here alike."""
from __future__ import annotations

from typing import Any, Mapping

from lib.conversations import layout
from lib.conversations.model import Conversation, Message


def conversation_of(row: Mapping[str, Any]) -> Conversation:
    """A group row as the conversation its owner sees."""
    return Conversation(message_group_uuid=row["message_group_uuid"],
                        display_name=row["user_display_name"], handle=row["user_handle"],
                        last_message=row["message"], last_message_at=row["sk"],
                        unread_count=layout.unread_of(row))


def message_json(message: Message) -> dict[str, str]:
    """A message as pattern A and the POST reply give it."""
    return {
        "uuid": message.uuid,
        "display_name": message.display_name,
        "handle": message.handle,
        "message": message.text,
        "created_at": message.created_at,
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
