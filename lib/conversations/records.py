"""Reading the table's stream: the one place a stream record becomes a change the rest of the
code understands. Both Lambdas read their records here (the stream Lambda the new messages, the
events Lambda every change it turns into live events)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from domain.conversations import Conversation, Message
from lib.conversations import layout
from lib.ddb import deserialize


@dataclass(frozen=True)
class NewMessage:
    """A message a record inserted: its group, time (sk), text, uuid and sender."""
    group: str
    sk: str
    text: str
    message_uuid: str
    sender: str = ""
    display_name: str = ""
    handle: str = ""

    @property
    def message(self) -> Message:
        return Message(uuid=self.message_uuid, message_group_uuid=self.group,
                       display_name=self.display_name, handle=self.handle, text=self.text,
                       created_at=self.sk)


@dataclass(frozen=True)
class MessageEdited:
    """A message a record changed: as it is now, its sender's new text stamped with the edit's time."""
    message: Message

    @property
    def group(self) -> str:
        return self.message.message_group_uuid

    @property
    def sk(self) -> str:
        return self.message.created_at

    @property
    def edited_at(self) -> str:
        return self.message.edited_at or ""


@dataclass(frozen=True)
class MessageDeleted:
    """A message a record deleted (its sender took it back): which, whose, and when."""
    group: str
    sk: str
    message_uuid: str
    sender: str
    deleted_at: str


@dataclass(frozen=True)
class RowWritten:
    """A group row a record inserted or changed: the conversation as its owner sees it now, and
    their read marker ("" before any)."""
    owner: str
    conversation: Conversation
    read_up_to: str


Change = NewMessage | MessageEdited | MessageDeleted | RowWritten


def change_of(record: Mapping[str, Any]) -> Change | None:
    """What a stream record did: a new message, a message edited or deleted, a group row written,
    or None for anything else (items removed, other items, records without a new image)."""
    name = record.get("eventName")
    if name not in ("INSERT", "MODIFY"):
        return None
    image = deserialize((record.get("dynamodb") or {}).get("NewImage") or {})
    if not image.get("sk"):
        return None
    if name == "INSERT" and layout.is_message(image):
        return NewMessage(group=layout.message_group_uuid_of(image), sk=image["sk"],
                          text=image.get("message", ""), message_uuid=image["message_uuid"],
                          sender=image.get("user_uuid", ""),
                          display_name=image.get("user_display_name", ""),
                          handle=image.get("user_handle", ""))
    if name == "MODIFY" and layout.is_message(image) and image.get(layout.DELETED):
        return MessageDeleted(group=layout.message_group_uuid_of(image), sk=image["sk"],
                              message_uuid=image["message_uuid"], sender=image.get("user_uuid", ""),
                              deleted_at=image[layout.DELETED])
    if name == "MODIFY" and layout.is_message(image) and image.get("edited_at"):
        return MessageEdited(layout.message_of_item(image, layout.message_group_uuid_of(image)))
    if layout.is_group_row(image):
        return RowWritten(layout.owner_of(image), layout.conversation_of_row(image),
                          image.get("read_up_to", ""))
    return None


def new_message(record: Mapping[str, Any]) -> NewMessage | None:
    """The message a record inserted, or None for anything else."""
    change = change_of(record)
    return change if isinstance(change, NewMessage) else None


def message_changed(record: Mapping[str, Any]) -> MessageEdited | MessageDeleted | None:
    """The edit or deletion a record made, or None for anything else."""
    change = change_of(record)
    return change if isinstance(change, (MessageEdited, MessageDeleted)) else None
