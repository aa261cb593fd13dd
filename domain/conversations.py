"""What the conversation store gives back: domain values, never the table's items.

Messages and conversations are named tuples: immutable, and the cheapest values Python makes (a
page builds twenty of them on every request)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Mapping, NamedTuple, TypeVar

T = TypeVar("T")

# A person as the store is given one: {"uuid", "display_name", "handle"} (a user row of PostgreSQL).
Person = Mapping[str, str]


class Message(NamedTuple):
    uuid: str
    message_group_uuid: str
    display_name: str  # the sender's, as the item copied it when they sent it
    handle: str
    text: str
    created_at: str
    sender_uuid: str = ""  # whose the names are (the current ones: services/names.py)
    edited_at: str | None = None  # when its text was last changed by its sender
    deleted_at: str | None = None  # when its sender took it back (its text is gone then)
    idempotency_key: str | None = None  # the Idempotency-Key it was sent with, if any


class Conversation(NamedTuple):
    """One conversation as one participant sees it in their list."""
    message_group_uuid: str
    display_name: str  # the other participant's, as the row copied it
    handle: str
    last_message: str
    last_message_at: str
    unread_count: int
    other_uuid: str = ""  # whose the names are (the current ones: services/names.py)
    last_message_edited_at: str | None = None  # the edit of the message shown, if any
    # The created time of the message whose text `last_message` is: the last message's (None),
    # an earlier one's once the last ones were deleted, or "" when no message is left.
    shown_message_at: str | None = None


class Sent(NamedTuple):
    """A message the store holds now: sent by this request, or (a retry with the same
    Idempotency-Key) by the first one. `named`: it was sent to a user by handle (pattern C), and
    the answer names its conversation."""
    message: Message
    named: bool


@dataclass(frozen=True)
class Page(Generic[T]):
    """Newest first. `next_after`: where the next page starts, None on the last page."""
    items: list[T]
    next_after: str | None


@dataclass(frozen=True)
class Idempotency:
    """A request's Idempotency-Key, and the fingerprint of what it asks (a retry must ask the same)."""
    key: str
    fingerprint: str
