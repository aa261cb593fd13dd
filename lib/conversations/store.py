"""The conversation store: the one adapter between the use cases and the messages table.

It offers what the API does with conversations (who takes part, send a message, a conversation's
messages, a user's conversations, move a read marker, unread totals) and gives back the domain's
values (domain/conversations.py). Each part is its own module, which this one only puts
together; none of them calls back into it:

  participants.py  who takes part, and which conversation a pair has (cached per process)
  sending.py       patterns C and D: the write order that needs no transaction
  read_markers.py  read markers and unread counts
  rows.py          reading the group rows, through the index and from the table
  layout.py        keys, items, and items as domain values

The stream Lambda moves the group rows with the same parts (stream.py); the table is made and
completed by table_setup.py; week5.py is what old week-5 tables need.
"""
from __future__ import annotations

from datetime import datetime

from domain.conversations import Conversation, Idempotency, Message, Page, Person, Sent
from domain import message_changes, message_ids, times
from domain.times import iso
from lib.conversations import layout, paging, read_markers
from lib.conversations.participants import Participants
from lib.conversations.rows import group_rows, newest_row_per_group
from lib.conversations.sending import Sender
from lib.ddb import Ddb, KeyTaken, WriteConflict

# Edits of one message racing each other: each tries again over the other's, this many times.
EDIT_ATTEMPTS = 5

# Pages (patterns A and B) read whole items, without a ProjectionExpression: DynamoDB charges for
# the whole item either way, and counts its 1 MB page before projecting. What a projection would
# save is a kilobyte or two of a page on the wire; the client's CPU it costs (building the
# expression) is what it saves in parsing (measured: docs/performance.md), and moto, beneath the
# local stack, takes milliseconds to project a page.
# A message about to be changed is read with only what a change looks at (one GetItem).
CHANGE_ATTRIBUTES = ("sk", "message_uuid", "message", "user_uuid", "user_display_name", "user_handle",
                     "edited_at", layout.DELETED, layout.SENT_WITH_KEY)


class ConversationStore:
    def __init__(self, table: Ddb, index: str = layout.GSI_NAME):
        self.table, self.index = table, index
        self.participants = Participants(table, index)
        self.sender = Sender(table, self.participants)

    # -- who takes part ------------------------------------------------------------------------
    def is_participant(self, group: str, user_uuid: str) -> bool:
        """Whether the user takes part in the conversation (participants.py)."""
        return self.participants.is_participant(group, user_uuid)

    def other_participant(self, group: str, user_uuid: str) -> str | None:
        """The participant of the conversation who is not `user_uuid` (who takes part): the
        header's, or a week-5 group's other row owner; while a lagging index shows only the
        user's own row, the one that row names (a row names the other participant). None: not
        found."""
        others = [p for p in self.participants.of(group) or () if p != str(user_uuid)]
        if others:
            return others[0]
        named = [row.get("user_uuid") for row in group_rows(self.table, group, self.index)
                 if layout.owner_of(row) == str(user_uuid)]
        return str(named[0]) if named and named[0] else None

    def layout_current(self) -> bool:
        """Whether every group of the table has its header (no week-5 group left to look for)."""
        return self.participants.layout_current()

    # -- sending -------------------------------------------------------------------------------
    def send_to_user(self, sender: Person, recipient: Person, text: str,
                     idempotency: Idempotency | None = None) -> Sent:
        """Pattern C: a message to a user, starting the pair's conversation with the first one."""
        return self.sender.to_user(sender, recipient, text, idempotency)

    def send_to_group(self, sender: Person, group: str, text: str,
                      idempotency: Idempotency | None = None) -> Sent:
        """Pattern D: a message into a conversation the sender takes part in (checked before)."""
        return self.sender.to_group(sender, group, text, idempotency)

    # -- changing what was sent -----------------------------------------------------------------
    def message(self, group: str, message_uuid: str) -> Message | None:
        """The conversation's message with this uuid (deleted ones too: see `deleted_at`), read
        consistently: one GetItem for a uuid that names its time (domain/message_ids.py); older
        messages' random uuids name none, and are looked for in the conversation."""
        item = self._message_item(group, message_uuid)
        return layout.message_of_item(item, group) if item is not None else None

    def _message_item(self, group: str, message_uuid: str) -> dict | None:
        created_at = message_ids.created_at_of(message_uuid)
        if created_at is not None:
            item = self.table.get(layout.message_key(group, created_at), attributes=CHANGE_ATTRIBUTES)
            return item if item is not None and item.get("message_uuid") == message_uuid else None
        return next(self.table.query_items(layout.message_pk(group), consistent=True,
                                           attributes=CHANGE_ATTRIBUTES, where={"message_uuid": message_uuid}),
                    None)

    def edit(self, message: Message, text: str) -> Message:
        """The message with its sender's new text, stamped with the time of the change. Each
        edit is written only over the state it read (a conditional update), so of two edits at
        once the one that lands last is what stays; an edit that lost the race tries again over
        the other's. A deletion beats every edit: raises ValueError("gone") when the message is
        deleted (or no longer there)."""
        key = layout.message_key(message.message_group_uuid, message.created_at)
        seen = message
        for _ in range(EDIT_ATTEMPTS):
            edited_at = message_changes.next_change_time(times.now_iso(), seen.edited_at)
            try:
                self.table.update_if(key, {"message": text, "edited_at": edited_at},
                                     {"message_uuid": message.uuid, "edited_at": seen.edited_at,
                                      layout.DELETED: None})
                return seen._replace(text=text, edited_at=edited_at)
            except KeyTaken as changed:
                now = changed.held.get(0)
                if not now or now.get(layout.DELETED):
                    raise ValueError("gone") from changed
                if now.get("edited_at") == edited_at and now.get("message") == text:
                    return seen._replace(text=text, edited_at=edited_at)  # ours: a lost response, retried
                seen = layout.message_of_item(now, message.message_group_uuid)
        raise WriteConflict(reason="edits kept racing")

    def delete(self, message: Message) -> str:
        """Take the message back: its item keeps its key and sender, loses its text (a tombstone
        marked deleted_at, which pattern A leaves out), and the record of the Idempotency-Key it
        was sent with loses the request's fingerprint (a hash of the text). The stream brings the
        rows and the live-event log along (stream.py, events.py). Deleting it again changes
        nothing: the time of the deletion, the first one's. Raises ValueError("gone") when the
        message is no longer there."""
        deleted_at = message.deleted_at
        if deleted_at is None:
            deleted_at = times.now_iso()
            try:
                # 1. the message: once this lands, nothing shows the text any more but copies the
                # stream replaces (rows, events), and no edit can land after it
                self.table.update_if(layout.message_key(message.message_group_uuid, message.created_at),
                                     {"message": "", layout.DELETED: deleted_at, "edited_at": None},
                                     {"message_uuid": message.uuid, layout.DELETED: None})
            except KeyTaken as changed:
                now = changed.held.get(0)
                if not now or not now.get(layout.DELETED):
                    raise ValueError("gone") from changed
                deleted_at = now[layout.DELETED]  # deleted meanwhile, or our own retried update landed
        if message.idempotency_key:
            # 2. its Idempotency-Key's record: done again by every retry of the deletion, so a
            # request that stopped between 1 and 2 is completed by the next one
            try:
                self.table.update_if(layout.idempotency_key(message.sender_uuid, message.idempotency_key),
                                     {"fingerprint": None, layout.DELETED: deleted_at},
                                     {"message_uuid": message.uuid})
            except KeyTaken:
                pass  # expired (TTL), or the key was used again since: no trace of this text
        return deleted_at

    # -- reading -------------------------------------------------------------------------------
    def messages(self, group: str, limit: int, after: str | None = None) -> Page[Message]:
        """Pattern A: the conversation's messages that are not deleted (a filter: DynamoDB reads
        the deleted ones too), newest first."""
        page = paging.newest_first(self.table, layout.message_pk(group), limit, after,
                                   where=layout.NOT_DELETED)
        return Page([layout.message_of_item(i, group) for i in page.items], page.next_after)

    def conversations(self, user_uuid: str, limit: int,
                      after: str | None = None) -> Page[Conversation]:
        """Pattern B: the user's conversations, most recent first."""
        page = paging.newest_first(self.table, layout.group_pk(user_uuid), limit, after)
        return Page([layout.conversation_of_row(r) for r in newest_row_per_group(page.items)],
                    page.next_after)

    # -- read markers --------------------------------------------------------------------------
    def mark_read(self, group: str, reader_uuid: str, up_to: datetime | None = None) -> int:
        """Move the reader's marker forward to the message sent at `up_to` (the newest message
        when None), never back: the conversation's unread count after."""
        return read_markers.mark_read(self.table, self.index, group, reader_uuid,
                                      iso(up_to) if up_to else None)

    def unread_summary(self, user_uuid: str) -> tuple[int, int]:
        """(conversations with unread messages, unread messages in all)."""
        return read_markers.unread_summary(self.table, user_uuid)
