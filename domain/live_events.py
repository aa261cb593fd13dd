"""Which live events a change of the conversations makes, and for whom: the one place that says it.

  a new message       -> `message` for each participant: pattern A's object + message_group_uuid
  a message edited    -> `message_changed` for each participant: the same, with its edited_at
  a conversation row  -> `conversation` for its owner: pattern B's object
  written              `read` for its owner when it carries a read marker:
                        {message_group_uuid, up_to, unread_count}

Each event's key is made of what it shows (a message's uuid; a row's group, time and count; a
marker's group and time), never of the change that carried it: the same change seen twice (a
stream record delivered again, a write the SDK sent twice) makes an event already logged, which
the log skips (lib/event_log.py). Nobody is sent an event of a conversation they are not in: a
message's go to its participants, a row's to its owner only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from domain.contract import group_json, message_json
from domain.conversations import Conversation, Message


@dataclass(frozen=True)
class NewEvent:
    """An event for one user. `key` names it: the same change always makes the same key."""
    user_uuid: str
    kind: str  # message | conversation | read (../shared/CONTRACT.md, "Live events")
    data: dict[str, Any]
    key: str


def of_message(message: Message, participants: Iterable[str]) -> list[NewEvent]:
    """A new message, for each of its conversation's participants."""
    data = {**message_json(message), "message_group_uuid": message.message_group_uuid}
    return [NewEvent(str(user), "message", data, f"message:{message.uuid}") for user in participants]


def of_message_change(message: Message, participants: Iterable[str]) -> list[NewEvent]:
    """A message its sender edited, for each of its conversation's participants: one event per
    edit (its time is in the key), however often the edit is seen."""
    data = {**message_json(message), "message_group_uuid": message.message_group_uuid}
    return [NewEvent(str(user), "message_changed", data, f"message_changed:{message.uuid}:{message.edited_at}")
            for user in participants]


def of_conversation(owner: str, conversation: Conversation, read_up_to: str = "") -> list[NewEvent]:
    """A conversation as its owner's list now shows it, and their read marker when it has one."""
    group, data = conversation.message_group_uuid, group_json(conversation)
    key = f"conversation:{group}:{conversation.last_message_at}:{conversation.unread_count}"
    if conversation.last_message_edited_at:  # the same row, showing an edited text
        key += f":{conversation.last_message_edited_at}"
    events = [NewEvent(owner, "conversation", data, key)]
    if read_up_to:
        marker = {"message_group_uuid": group, "up_to": read_up_to, "unread_count": conversation.unread_count}
        events.append(NewEvent(owner, "read", marker, f"read:{group}:{read_up_to}"))
    return events
