"""The conversation store (store.py) and what it is made of: the table's layout (layout.py), the
write order of a message (sending.py), read markers (read_markers.py), the stream's row mover
(stream.py), the live events a change makes (events.py), the contract's shapes (shapes.py) and
the week-5 compatibility (week5.py). docs/data-model.md tells the story."""
from lib.conversations.model import Conversation, Idempotency, Message, Page, Person, Sent
from lib.conversations.shapes import group_json, message_json
from lib.conversations.store import ConversationStore

__all__ = ["ConversationStore", "Conversation", "Idempotency", "Message", "Page", "Person", "Sent",
           "group_json", "message_json"]
