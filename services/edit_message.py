"""A sender corrects a message they sent, within 24 hours of sending it; and who may change a
message at all (also deleting it: services/delete_message.py)."""
from __future__ import annotations

from typing import Any

from domain import message_changes, times
from domain.contract import message_json
from domain.conversations import Message
from domain.errors import Conflict, MalformedRequest, NotFound, NotPermitted
from lib.conversations.store import ConversationStore
from services import validation


def message_not_found() -> NotFound:
    return NotFound("message_not_found", detail="no such message in a conversation of yours")


def changeable(conversations: ConversationStore, caller: dict[str, Any], message_group_uuid: str,
               message_uuid: str, deleted_too: bool = False) -> Message:
    """The caller's own message of a conversation they take part in, which they may change (a
    deleted one only when `deleted_too`: its sender deleting it again). Else NotFound, or
    NotPermitted for the other participant's message.

    A message that does not exist, and one of a conversation the caller is not in, are one
    answer, reached by the same reads: the message is read, and whether the caller takes part
    asked, whatever the answer to either."""
    group = validation.canonical_uuid(message_group_uuid, not_found=message_not_found())
    uuid = validation.canonical_uuid(message_uuid, not_found=message_not_found())
    message = conversations.message(group, uuid)
    takes_part = conversations.is_participant(group, str(caller["uuid"]))
    if message is None or not takes_part:
        raise message_not_found()
    mine = message.sender_uuid == str(caller["uuid"])
    if message.deleted_at and not (deleted_too and mine):  # gone, but to its sender deleting it again
        raise message_not_found()
    if not mine:
        raise NotPermitted("not_sender", detail="only its sender changes a message")
    return message


class EditMessage:
    @staticmethod
    def run(conversations: ConversationStore, caller: dict[str, Any], message_group_uuid: str,
            message_uuid: str, body: Any) -> dict[str, Any]:
        """The message as pattern A gives it, with the new text and `edited_at`. The same text
        again changes nothing. A deleted message is not found."""
        if not isinstance(body, dict):
            raise MalformedRequest("body_invalid", detail="the body must be a JSON object")
        text = validation.message_text(body.get("message"))
        message = changeable(conversations, caller, message_group_uuid, message_uuid)
        if not message_changes.may_edit(message.created_at, times.now_iso()):
            raise Conflict("edit_window_closed", detail="a message may be edited for 24 hours after it was sent")
        if text != message.text:
            try:
                message = conversations.edit(message, text)
            except ValueError:
                raise message_not_found() from None
        return message_json(message)
