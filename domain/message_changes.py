"""What a sender may change of a message they sent (../shared/CONTRACT.md, "Editing and deleting a
message"): its text, for 24 hours after it was sent."""
from __future__ import annotations

from datetime import datetime, timedelta

from domain.times import iso

EDIT_WINDOW = timedelta(hours=24)


def may_edit(created_at: str, now: str) -> bool:
    """Whether a message sent at `created_at` may still be edited at `now`."""
    return now <= iso(datetime.fromisoformat(created_at) + EDIT_WINDOW)


def next_change_time(now: str, last: str | None) -> str:
    """The time a change is stamped with: now, or just after the last one when a clock behind
    that change's reads earlier (changes of one message are stamped in the order they land)."""
    if last and now <= last:
        return iso(datetime.fromisoformat(last) + timedelta(microseconds=1))
    return now
