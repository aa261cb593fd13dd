"""The one time format of the messages table and the API: UTC ISO-8601 with microseconds and
+00:00, so that a string's order is its time's order (sort keys, read markers, cursors)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and +00:00: string order is time order."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def later(moment: str, microseconds: int) -> str:
    """`moment` moved on by `microseconds`, in the same format."""
    if not microseconds:
        return moment
    return iso(datetime.fromisoformat(moment) + timedelta(microseconds=microseconds))


def epoch_now() -> int:
    """The clock DynamoDB's time to live reads: whole seconds since the epoch."""
    return int(time.time())
