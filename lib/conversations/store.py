"""The conversation store: the one adapter between the use cases and the messages table.

It offers what the API does with conversations (who takes part, send a message, a conversation's
messages, a user's conversations, move a read marker, unread totals) and gives back domain values
(lib/conversations/model.py). How that is laid out in one table (layout.py), in which order writes
go so that nothing needs a transaction (sending.py), how read markers and counts are kept
(read_markers.py) and what old week-5 tables need (week5.py) is behind it. The stream Lambda moves
the group rows with the same code (stream.py).

Caches (per process): a group's participants never change, and neither does the conversation a
pair's derived uuid leads to, so both are kept for good; the table's layout version is read again
every few minutes (a migration may end).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from lib.cache import Cache
from lib.conversations import layout, read_markers, sending, shapes, week5
from lib.conversations.model import Conversation, Idempotency, Message, Page, Person, Sent
from lib.ddb import Ddb, StoreError

LAYOUT_RECHECK_SECONDS = 300.0
CREATED = "created the table"

# What each read asks for: DynamoDB charges for the whole item either way; what a projection
# saves is the client's work parsing attributes nobody uses.
MESSAGE_ATTRIBUTES = ("sk", "message_uuid", "message", "user_display_name", "user_handle")
ROW_ATTRIBUTES = ("sk", "message_group_uuid", "message", "user_display_name", "user_handle",
                  "unread_count")


class ConversationStore:
    def __init__(self, table: Ddb, index: str = layout.GSI_NAME):
        self.table, self.index = table, index
        # message_group_uuid -> its two participants
        self.membership: Cache[tuple[str, ...]] = Cache(max_size=100_000)
        # a pair's derived group uuid -> the pair's conversation, where that is another (a week-5
        # group, with a random uuid)
        self.pairs: Cache[str] = Cache(max_size=100_000)
        self.layout: Cache[int] = Cache(max_size=1, ttl=LAYOUT_RECHECK_SECONDS)

    # -- who takes part ------------------------------------------------------------------------
    def layout_current(self) -> bool:
        """Whether every group of the table has its header (no week-5 group left to look for)."""
        return self.layout.get_or_load("version", lambda: week5.layout_version(self.table)) >= layout.LAYOUT_VERSION

    def is_participant(self, group: str, user_uuid: str) -> bool:
        """Whether the user takes part in the conversation. Only a participant is answered from
        the cache. Anyone else costs the same reads whether the conversation exists or not: a
        group's uuid derives from its two participants' public uuids, so a faster "no" for a
        cached group would tell anyone signed in who talks to whom."""
        members = self.membership.get(group)
        if members is not None and str(user_uuid) in members:
            return True
        members = self._participants(group)
        return members is not None and str(user_uuid) in members

    def _participants(self, group: str) -> tuple[str, ...] | None:
        """The participants as the table has them (the reads of a cache miss), cached once known."""
        header = self.table.get(layout.header_key(group))
        if header is not None:
            members = tuple(sorted(header["participants"]))
            self.membership.put(group, members)
            return members
        if self.layout_current():
            return None
        owners = week5.participants(self.group_rows(group))
        if len(owners) == 2:  # both rows seen: the group's participants, for good
            self.membership.put(group, owners)
        return owners or None

    def conversation_of_pair(self, derived: str, user_a: str, user_b: str) -> str | None:
        """The pair's conversation when this process knows it, or (on a week-5 table) the table
        has one under a random uuid; None: the first message creates it at `derived`."""
        known = self.pairs.get(derived) or (derived if self.membership.get(derived) else None)
        if known is None and not self.layout_current():
            # never start a second conversation beside a week-5 one
            known = week5.conversation_between(self.table, user_a, user_b)
            if known is not None:
                self.pairs.put(derived, known)
        return known

    def remember_group(self, derived: str, actual: str, members: tuple[str, ...]) -> None:
        """What a first message learnt: the pair's conversation, and its participants."""
        if actual == derived:
            self.membership.put(derived, members)
        else:
            self.pairs.put(derived, actual)

    def group_rows(self, group: str) -> list[dict[str, Any]]:
        """Both participants' rows of a group, through the GSI (which may lag)."""
        return read_markers.group_rows(self.table, group, self.index)

    # -- sending -------------------------------------------------------------------------------
    def send_to_user(self, sender: Person, recipient: Person, text: str,
                     idempotency: Idempotency | None = None) -> Sent:
        """Pattern C: a message to a user, starting the pair's conversation with the first one."""
        return sending.to_user(self, sender, recipient, text, idempotency)

    def send_to_group(self, sender: Person, group: str, text: str,
                      idempotency: Idempotency | None = None) -> Sent:
        """Pattern D: a message into a conversation the sender takes part in (checked before)."""
        return sending.to_group(self, sender, group, text, idempotency)

    # -- reading -------------------------------------------------------------------------------
    def messages(self, group: str, limit: int, after: str | None = None) -> Page[Message]:
        """Pattern A: the conversation's messages, newest first."""
        items, next_after = self._page(layout.message_pk(group), limit, after, MESSAGE_ATTRIBUTES)
        return Page([sending.message_of(i, group) for i in items], next_after)

    def conversations(self, user_uuid: str, limit: int,
                      after: str | None = None) -> Page[Conversation]:
        """Pattern B: the user's conversations, most recent first."""
        rows, next_after = self._page(layout.group_pk(user_uuid), limit, after, ROW_ATTRIBUTES)
        return Page([shapes.conversation_of(r) for r in read_markers.newest_row_per_group(rows)], next_after)

    def _page(self, pk: str, limit: int, after: str | None,
              attributes: tuple[str, ...]) -> tuple[list[dict[str, Any]], str | None]:
        # One item more than asked for, so that a next page is named only when one follows.
        page = self.table.query(pk, limit=limit + 1, newest_first=True, after_sk=after,
                                attributes=attributes)
        items = page.items[:limit]
        return items, (items[-1]["sk"] if len(page.items) > limit else None)

    # -- read markers --------------------------------------------------------------------------
    def mark_read(self, group: str, reader_uuid: str, up_to: datetime | None = None) -> int:
        """Move the reader's marker forward to the message sent at `up_to` (the newest message
        when None), never back: the conversation's unread count after."""
        return read_markers.mark_read(self, group, reader_uuid, layout.iso(up_to) if up_to else None)

    def unread_summary(self, user_uuid: str) -> tuple[int, int]:
        """(conversations with unread messages, unread messages in all)."""
        return read_markers.unread_summary(self, user_uuid)

    # -- the table itself (scripts, the local stack, readiness) ---------------------------------
    def create_table(self, provisioned: bool = False, read_capacity: int = 5,
                     write_capacity: int = 5) -> bool:
        """set_up_table, for callers that only ask whether the table was made."""
        done = self.set_up_table(provisioned, read_capacity, write_capacity)
        return any(step.startswith(CREATED) for step in done)

    def set_up_table(self, provisioned: bool = False, read_capacity: int = 5,
                     write_capacity: int = 5) -> list[str]:
        """Make the table, or complete whatever of it is missing: the index, the stream (new
        images), TTL on expires_at, the layout mark. Each run checks everything, so a run that
        stopped half-way (Ctrl-C, a missing permission, a wait that timed out) is completed by
        the next. Returns what it did, in words (empty: nothing was missing)."""
        done: list[str] = []
        definition = layout.table_definition(self.table.table, provisioned, read_capacity, write_capacity)
        described = self.table.describe()
        if described is None:
            self.table.create_table(definition)
            done.append(f"{CREATED}, its index and its stream")
            described = self.table.describe() or {}
        # First, whatever fails after it: an empty table marked now is never taken for a week-5
        # table by a run that stopped half-way.
        if week5.layout_version(self.table) < layout.LAYOUT_VERSION:
            if self.table.is_empty():
                self.table.put(layout.layout_item())  # an empty table holds no group without a header
                done.append("wrote the layout mark (the table is in the current layout)")
            else:
                done.append("no layout mark, and the table holds items: if the bootcamp's week-5 "
                            "backend wrote them, bin/ddb/migrate brings them to the current layout "
                            "(and writes the mark)")
        indexes = {i["IndexName"] for i in described.get("GlobalSecondaryIndexes") or []}
        if self.index not in indexes:
            [index] = definition["GlobalSecondaryIndexes"]
            self.table.update_table(AttributeDefinitions=definition["AttributeDefinitions"],
                                    GlobalSecondaryIndexUpdates=[{"Create": index}])
            done.append(f"added the index {self.index}")
        # A store may lack a capability (dynalite has no streams): one line on what will not work,
        # and setup goes on; the API serves without either.
        stream = described.get("StreamSpecification") or {}
        if not stream.get("StreamEnabled"):
            try:
                self.table.update_table(StreamSpecification=definition["StreamSpecification"])
                done.append("turned the stream on (new images): group rows follow messages again")
            except StoreError as refused:
                done.append(f"no stream ({refused}): conversation rows will not follow new messages, "
                            "and live events will not arrive, on this store")
        elif stream.get("StreamViewType") not in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            done.append(f"left the stream as it is, but its view type {stream.get('StreamViewType')} "
                        f"carries no new images: the stream Lambda needs NEW_IMAGE")
        try:
            if self.table.ttl()[0] not in ("ENABLED", "ENABLING"):
                status = self.table.ensure_ttl(layout.TTL_ATTRIBUTE)
                done.append(f"time to live on {layout.TTL_ATTRIBUTE} (idempotency records expire): {status.lower()}")
        except StoreError as refused:
            done.append(f"no time to live ({refused}): idempotency records will not expire on this "
                        "store (each is a few hundred bytes per message sent)")
        return done

    def ensure_ttl(self) -> str:
        """TTL on the idempotency records' expires_at: the table's TTL status afterwards."""
        return self.table.ensure_ttl(layout.TTL_ATTRIBUTE)

