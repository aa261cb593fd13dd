"""Patterns C and D: the write order that makes a message exactly-once without transactions.

A first message to a user (pattern C) writes, each as a plain conditional put (6 WCU in all; one
transaction of the four would cost 10):
  1. the group's header, "unless it exists": of two concurrent first messages only one creates the
     group; the other finds the header and writes a message into the group;
  2. with an Idempotency-Key, its record (which message this request makes), then the message;
  3. both participants' group rows. Should the API stop before them, the message's stream record
     makes the stream Lambda write them, from the header's copy of both participants' names.
A message into a group (pattern D) is steps 2 only. A message sent with an Idempotency-Key names
it (so that deleting the message can erase the record's fingerprint of its text, store.py).

What AWS does that this survives: the SDK retries a put whose response was lost, and the retry
finds the key taken by its own first attempt (the held item carries this request's message_uuid,
so it is recognised as ours); two messages may pick the same microsecond of one group (the later
takes a new time); a retry with the same Idempotency-Key may come while the first attempt is
still on its way (it writes that very message, and whichever lands second finds it landed).
"""
from __future__ import annotations

from typing import Any

from domain.conversations import Idempotency, Person, Sent
from domain.errors import Gone, InvalidInput
from domain import message_ids, times
from lib.conversations import layout
from lib.conversations.layout import message_of_item
from lib.conversations.participants import Participants
from lib.ddb import Ddb, KeyTaken, WriteConflict

# Two writes may pick the same microsecond for the same partition; each retry takes a new time.
ATTEMPTS = 5


class _Replay(Exception):
    """The Idempotency-Key's message is stored already: answer with it."""

    def __init__(self, sent: Sent):
        self.sent = sent


class Sender:
    """Writes messages into one table, in the order above. `participants` answers which
    conversation a pair has, and learns what a first message wrote."""

    def __init__(self, table: Ddb, participants: Participants):
        self.table, self.participants = table, participants

    def to_user(self, sender: Person, recipient: Person, text: str,
                idempotency: Idempotency | None) -> Sent:
        """Pattern C: into the pair's conversation, creating it with the first message."""
        draft = _Draft(sender, text, idempotency)
        record = _Record(self.table, sender, idempotency)
        try:
            group = layout.group_uuid_for(sender["uuid"], recipient["uuid"])
            known = self.participants.conversation_of_pair(group, sender["uuid"], recipient["uuid"])
            if known is not None:
                return self._into_group(draft, known, record, named=True)
            return self._first_message(draft, group, recipient, record)
        except _Replay as replay:
            return replay.sent

    def to_group(self, sender: Person, group: str, text: str,
                 idempotency: Idempotency | None) -> Sent:
        """Pattern D: into a conversation the sender belongs to (the caller has checked)."""
        try:
            return self._into_group(_Draft(sender, text, idempotency), group,
                                    _Record(self.table, sender, idempotency), named=False)
        except _Replay as replay:
            return replay.sent

    def _first_message(self, draft: "_Draft", group: str, other: Person, record: "_Record") -> Sent:
        caller = draft.sender
        members = sorted([str(caller["uuid"]), str(other["uuid"])])
        header = layout.header_item(group, members, draft.created_at,
                                    layout.profiles_of(caller, other), draft.message_uuid)
        try:
            self.table.put_new(header)
        except KeyTaken as taken:
            held = taken.held.get(0, {})
            if held.get("first_message_uuid") != draft.message_uuid:  # else: ours, retried
                # The pair has a conversation already (another, when the header is a migrated
                # week-5 group's alias): this is a message into it.
                if held:
                    self.participants.remember_header(group, held)
                return self._into_group(draft, held.get("message_group_uuid", group), record, named=True)
        self.participants.remember_header(group, header)
        sent = self._into_group(draft, group, record, named=True)
        for row in layout.message_rows(caller, other, group, draft.text, sent.message.created_at):
            try:
                self.table.put_new(row)
            except KeyTaken:
                # Written already by the stream Lambda (it found the message first), or the owner's
                # row of another conversation holds this microsecond: the Lambda puts this row a
                # microsecond later.
                pass
        return sent

    def _into_group(self, draft: "_Draft", group: str, record: "_Record", named: bool) -> Sent:
        """One message into a group. With an Idempotency-Key, its record is written first, then the
        message: a retry that finds the record answers from the message, or writes that very message
        if it is not there yet."""
        group = record.claim(draft, group, named)
        for _ in range(ATTEMPTS):
            item = draft.item(group)
            try:
                self.table.put_new(item)
                return Sent(message_of_item(item, group), named)
            except KeyTaken as taken:
                if taken.held.get(0, {}).get("message_uuid") == draft.message_uuid:
                    return Sent(message_of_item(item, group), named)  # ours: a retry of a lost response
            # Another message holds this microsecond of the group: take a new time, and say so in
            # the record first.
            draft.retime()
            record.write(draft, group, named)
        raise WriteConflict(reason="attempts exhausted")


def _deleted() -> Gone:
    return Gone("message_deleted", detail="the message this Idempotency-Key sent has been deleted")


class _Draft:
    """The message being sent: its sender, text, uuid and time, fixed for the whole request (a
    key found taken by a message with this uuid is this message, written by an attempt whose
    response was lost); a time collision gives it a new time, and with it a new uuid."""

    def __init__(self, sender: Person, text: str, idempotency: Idempotency | None = None):
        self.sender, self.text = sender, text
        self.key = idempotency.key if idempotency else None
        self.retime()

    def retime(self) -> None:
        """A new time, and the uuid that names it (domain/message_ids.py)."""
        self.created_at = times.now_iso()
        self.message_uuid = message_ids.new(self.created_at)

    def item(self, group: str) -> dict[str, Any]:
        return layout.message_item(group, self.sender, self.text, self.created_at, self.message_uuid,
                                   self.key)


class _Record:
    """An Idempotency-Key's record: which message the request makes, written before it (1 WCU,
    a plain conditional put). Does nothing without a key."""

    def __init__(self, table: Ddb, sender: Person, idempotency: Idempotency | None):
        self.table, self.user, self.idempotency = table, str(sender["uuid"]), idempotency

    def _item(self, draft: _Draft, group: str, named: bool) -> dict[str, Any]:
        assert self.idempotency is not None
        return layout.idempotency_item(self.user, self.idempotency.key, self.idempotency.fingerprint,
                                       group, draft.message_uuid, draft.created_at, named)

    def claim(self, draft: _Draft, group: str, named: bool) -> str:
        """Write the record unless the key was used already. If it was (and has not expired):
        a different request is refused; the same one is answered from its message when stored
        (Gone when its sender has deleted it since: nothing is written again), else carries on
        as that message (`draft` takes its uuid and time). Returns the group to write into."""
        if self.idempotency is None:
            return group
        key = layout.idempotency_key(self.user, self.idempotency.key)
        try:
            self.table.put_new(self._item(draft, group, named), expires=layout.TTL_ATTRIBUTE)
            return group
        except KeyTaken as taken:
            held = taken.held.get(0) or self.table.get(key)
        if held is None or layout.expired(held):
            # gone meanwhile (TTL): claim it afresh
            self.table.put(self._item(draft, group, named))
            return group
        if held.get(layout.DELETED):
            raise _deleted()  # its fingerprint went with it: whatever this request asks, its message is gone
        if held.get("fingerprint") != self.idempotency.fingerprint:
            raise InvalidInput("idempotency_key_reused",
                               detail="this Idempotency-Key was used for a different request")
        recorded_group = held["group"]
        message = self.table.get(layout.message_key(recorded_group, held["created_at"]))
        if message is not None and message.get("message_uuid") == held["message_uuid"]:
            if message.get(layout.DELETED):
                raise _deleted()
            raise _Replay(Sent(message_of_item(message, recorded_group), bool(held.get("named"))))
        # The first attempt stopped (or is still on its way) between its record and its message:
        # this request writes that message; whichever of the two lands second finds it landed.
        draft.message_uuid, draft.created_at = held["message_uuid"], held["created_at"]
        return recorded_group

    def write(self, draft: _Draft, group: str, named: bool) -> None:
        """Say in the record that the message moved to a new time (a collision)."""
        if self.idempotency is not None:
            self.table.put(self._item(draft, group, named))
