"""The live events a stream record makes: the record read (records.py), the events decided by
the domain's rule (domain/live_events.py), a message's sent to both participants
(participants.py). The messaging events Lambda (aws/lambdas/cruddur-messaging-events.py) logs
what this returns (lib/event_log.py)."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from domain import live_events
from domain.live_events import NewEvent
from lib.conversations.records import MessageDeleted, MessageEdited, NewMessage, RowWritten, change_of

# group uuid -> its participants (Participants.both)
Participants = Callable[[str], Iterable[str]]


def events_of(record: Mapping[str, Any], participants: Participants) -> list[NewEvent]:
    """The events one stream record makes (none for anything else)."""
    change = change_of(record)
    if isinstance(change, NewMessage):
        return live_events.of_message(change.message, participants(change.group))
    if isinstance(change, MessageEdited):
        return live_events.of_message_change(change.message, participants(change.group))
    if isinstance(change, MessageDeleted):
        return live_events.of_message_deletion(change.group, change.message_uuid, change.sk, change.deleted_at,
                                               participants(change.group))
    if isinstance(change, RowWritten):
        return live_events.of_conversation(change.owner, change.conversation, change.read_up_to)
    return []
