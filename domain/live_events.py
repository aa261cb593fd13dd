"""Which live events a change of the conversations makes, and for whom: the one place that says it.

  a new message       -> `message` for each participant: pattern A's object + message_group_uuid
  a message edited    -> `message_changed` for each participant: the same, with its edited_at
  a message deleted   -> `message_deleted` for each participant: {message_group_uuid, uuid,
                        deleted_at}; and every event holding its text is erased from the log
  a conversation row  -> `conversation` for its owner: pattern B's object
  written              `read` for its owner when it carries a read marker:
                        {message_group_uuid, up_to, unread_count}

Each event's key is made of what it shows (a message's uuid; a row's group, time and count; a
marker's group and time), never of the change that carried it: the same change seen twice (a
stream record delivered again, a write the SDK sent twice) makes an event already logged, which
the log skips (lib/event_log.py). Nobody is sent an event of a conversation they are not in: a
message's go to its participants, a row's to its owner only.

An event that holds a message's text says which (`shows`, a `message_ref`), and a deletion's
events name the message they erase (`erases`): the log blanks every event that shows it, and
any that comes later (lib/event_log.py), so that no page receives a deleted text again. An edit's
events refresh the message's own earlier events (`refreshes`): a page resuming from before the
message receives it as it is now.
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
    shows: str = ""  # the message whose text `data` holds (message_ref), if any
    erases: str = ""  # the deleted message whose text this event takes out of the log, if any
    refreshes: bool = False  # its data is its message as it is now: the message's older events take it


# The events whose data is a message itself (an edit refreshes them all: lib/event_log.py).
MESSAGE_KINDS = ("message", "message_changed")


def message_ref(message_group_uuid: str, created_at: str) -> str:
    """How the log names a message (its conversation and created time: its key in the table)."""
    return f"{message_group_uuid}/{created_at}"


def of_message(message: Message, participants: Iterable[str]) -> list[NewEvent]:
    """A new message, for each of its conversation's participants."""
    return _message_events(message, participants, "message", f"message:{message.uuid}")


def of_message_change(message: Message, participants: Iterable[str]) -> list[NewEvent]:
    """A message its sender edited, for each of its conversation's participants: one event per
    edit (its time is in the key), however often the edit is seen."""
    return _message_events(message, participants, "message_changed",
                           f"message_changed:{message.uuid}:{message.edited_at}", refreshes=True)


def _message_events(message: Message, participants: Iterable[str], kind: str, key: str,
                    refreshes: bool = False) -> list[NewEvent]:
    """Pattern A's object of the message with its message_group_uuid, for each participant."""
    data = {**message_json(message), "message_group_uuid": message.message_group_uuid}
    shows = message_ref(message.message_group_uuid, message.created_at)
    return [NewEvent(str(user), kind, data, key, shows, refreshes=refreshes) for user in participants]


def of_message_deletion(message_group_uuid: str, message_uuid: str, created_at: str, deleted_at: str,
                        participants: Iterable[str]) -> list[NewEvent]:
    """A message its sender deleted, for each of its conversation's participants: one event
    however often the deletion is seen, which erases the message's text from their logs."""
    data = {"message_group_uuid": message_group_uuid, "uuid": message_uuid, "deleted_at": deleted_at}
    erases = message_ref(message_group_uuid, created_at)
    return [NewEvent(str(user), "message_deleted", data, f"message_deleted:{message_uuid}", erases=erases)
            for user in participants]


def of_conversation(owner: str, conversation: Conversation, read_up_to: str = "") -> list[NewEvent]:
    """A conversation as its owner's list now shows it, and their read marker when it has one."""
    group, data = conversation.message_group_uuid, group_json(conversation)
    key = f"conversation:{group}:{conversation.last_message_at}:{conversation.unread_count}"
    shown = conversation.last_message_at if conversation.shown_message_at is None else conversation.shown_message_at
    if shown != conversation.last_message_at:  # the same row, showing an earlier message (or none)
        key += f":shows:{shown}"
    if conversation.last_message_edited_at:  # the same row, showing an edited text
        key += f":{conversation.last_message_edited_at}"
    events = [NewEvent(owner, "conversation", data, key, message_ref(group, shown) if shown else "")]
    if read_up_to:
        marker = {"message_group_uuid": group, "up_to": read_up_to, "unread_count": conversation.unread_count}
        events.append(NewEvent(owner, "read", marker, f"read:{group}:{read_up_to}"))
    return events
