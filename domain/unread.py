"""Unread messages: the one rule for what counts, and how far.

A participant has read a conversation up to a marker (the time of the last message they read).
Their unread messages are the OTHER participant's messages after that marker, up to the
conversation's last message. Sending marks read: a participant's marker moves to their own newest
message. Counts stop at UNREAD_CAP: a badge shows "99+" past it, and counting further would read
every unread message of a long-silent conversation again on each new message.

The conversation store keeps a marker and a count in each participant's row
(lib/conversations/read_markers.py writes them, from the API and from the stream Lambda alike);
what they must be is decided here.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Protocol

UNREAD_CAP = 99


def capped(count: int) -> int:
    """A count as it is kept and shown: 0 to UNREAD_CAP."""
    return max(0, min(int(count), UNREAD_CAP))


class Seen(NamedTuple):
    """Where a participant is in a conversation, as their row says: the time of its last message,
    their read marker ("" before any) and the unread count it carries."""
    last: str
    read_up_to: str
    unread: int


class Sent(Protocol):
    """A message as the rules need it: when, and by whom."""
    sk: str
    sender: str


def count(messages: Iterable[tuple[str, str]], reader: str, after: str) -> int:
    """How many of `messages` ((time, sender) pairs, oldest first) are unread by `reader` whose
    marker is `after`: others' messages later than it, counted up to UNREAD_CAP (it stops reading
    there)."""
    found = 0
    for sent_at, sender in messages:
        if sent_at > after and sender != reader:
            found += 1
            if found >= UNREAD_CAP:
                break
    return found


def after_batch(seen: Seen | None, batch: Iterable[Sent], me: str) -> tuple[str, int | None]:
    """(read marker, unread count) of participant `me` once `batch` (new messages of the
    conversation) is applied to what their row says (`seen`; None: no row yet). The count is
    worked out from the row and the batch's messages newer than its last one; None when that
    cannot be told (a message older than the row came late, or again: was it counted before?),
    and the count must be read from the messages themselves."""
    batch = list(batch)
    last, before, counted = seen if seen is not None else ("", "", 0)
    marker = max([before, *(m.sk for m in batch if m.sender == me)])
    if marker == before:
        base: int | None = counted
    else:
        base = 0 if marker >= last else None  # what it had counted is read now, or partly
    theirs = [m for m in batch if m.sender != me and m.sk > marker]
    if base is None or any(m.sk < last for m in theirs):
        return marker, None
    return marker, capped(base + sum(1 for m in theirs if m.sk > last))
