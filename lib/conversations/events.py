"""The live events a change of the messages table makes, and for whom: the one place that says
it. The messaging events Lambda (aws/lambdas/cruddur-messaging-events.py) reads the table's
stream, turns each record into events here, and logs them (lib/event_log.py).

  a message inserted   -> `message` for each participant: pattern A's object + message_group_uuid
  a group row written  -> `conversation` for its owner: pattern B's object
                          `read` for its owner when it carries a read marker:
                          {message_group_uuid, up_to, unread_count}

Each event's key is made of what it shows (a message's uuid; a row's group, time and count; a
marker's group and time), never of the record that carried it. So a record delivered twice, and
a write the SDK sent twice that changed nothing new, make an event already logged, which the log
skips; and nobody is sent an event of a conversation they are not in: participants come from the
group's header (or, for a week-5 group without one, its rows' owners), a row's event goes to its
owner only.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from lib.conversations import layout, shapes
from lib.conversations.read_markers import group_rows
from lib.conversations.sending import message_of
from lib.conversations.stream import IndexBehind, RowMover
from lib.event_log import NewEvent
from lib.ddb import deserialize

# The stream records the events Lambda is given (its mapping's filter in aws/template.yaml says
# the same): new messages, and group rows inserted or changed.
Participants = Callable[[str], Iterable[str]]


def events_of(record: Mapping[str, Any], participants: Participants) -> list[NewEvent]:
    """The events one stream record makes (none for anything else)."""
    name = record.get("eventName")
    if name not in ("INSERT", "MODIFY"):
        return []
    image = deserialize((record.get("dynamodb") or {}).get("NewImage") or {})
    if name == "INSERT" and layout.is_message(image) and image.get("sk"):
        group = layout.message_group_uuid_of(image)
        data = {**shapes.message_json(message_of(image, group)), "message_group_uuid": group}
        return [NewEvent(str(user), "message", data, f"message:{image['message_uuid']}")
                for user in participants(group)]
    if layout.is_group_row(image) and image.get("sk"):
        owner, group = layout.owner_of(image), image["message_group_uuid"]
        conversation = shapes.group_json(shapes.conversation_of(image))
        events = [NewEvent(owner, "conversation", conversation,
                           f"conversation:{group}:{image['sk']}:{conversation['unread_count']}")]
        if image.get("read_up_to"):
            marker = {"message_group_uuid": group, "up_to": image["read_up_to"],
                      "unread_count": conversation["unread_count"]}
            events.append(NewEvent(owner, "read", marker, f"read:{group}:{image['read_up_to']}"))
        return events
    return []


def participants_from(mover: RowMover) -> Participants:
    """Who takes part in a group: its header's participants (read consistently once, then
    remembered by the mover's cache), or a week-5 group's rows' owners. A week-5 group whose two
    rows the index does not show yet raises IndexBehind: its record is tried again."""
    def participants(group: str) -> list[str]:
        header = mover.header(group)
        if header is not None:
            return sorted(header.owners)
        owners = sorted({layout.owner_of(row) for row in group_rows(mover.table, group, mover.index)})
        if len(owners) == 1:
            raise IndexBehind(f"group {group}: the index shows one participant")
        return owners  # two, or none: not a conversation
    return participants
