"""Who may read or post in a conversation: its two participants, and nobody else."""
from __future__ import annotations

from domain.errors import NotFound
from lib.conversations.store import ConversationStore


def require_participant(conversations: ConversationStore, message_group_uuid: str, user_uuid: str) -> None:
    """NotFound unless the user takes part: "not yours" and "does not exist" are one answer, in
    status, body, headers and time (the store reads the table for anyone it does not know as a
    participant)."""
    if not conversations.is_participant(message_group_uuid, str(user_uuid)):
        raise NotFound("message_group_not_found", detail="no such conversation")
