"""A sender takes a message back, at any time."""
from __future__ import annotations

from typing import Any

from lib.conversations.store import ConversationStore
from services.edit_message import changeable, message_not_found


class DeleteMessage:
    @staticmethod
    def run(conversations: ConversationStore, caller: dict[str, Any], message_group_uuid: str,
            message_uuid: str) -> dict[str, str]:
        """{uuid, message_group_uuid, deleted_at}: the same again for a message deleted already.
        The message leaves the conversation and its text everything the service keeps: the
        store erases it from the item and its idempotency record, the stream from the rows and
        the live-event log."""
        message = changeable(conversations, caller, message_group_uuid, message_uuid, deleted_too=True)
        try:
            deleted_at = conversations.delete(message)
        except ValueError:  # gone meanwhile: as if it had never been
            raise message_not_found() from None
        return {"uuid": message.uuid, "message_group_uuid": message.message_group_uuid, "deleted_at": deleted_at}
