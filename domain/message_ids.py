"""A message's uuid names the time it was sent, so that a message is found by its uuid with one
GetItem of its key (pk MSG#<group>, sk = that time) instead of a Query of its conversation.

It is a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, the version, then in the 12 bits the RFC
leaves to extra clock precision the microseconds within that millisecond (0 to 999), then the
variant and 62 random bits. Messages written before (and by the week-5 backend) have random
version-4 uuids, which name no time: those are looked for in their conversation."""
from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta, timezone

from domain.times import iso

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def new(created_at: str) -> str:
    """A new message uuid naming `created_at` (the message's sk)."""
    epoch_us = (datetime.fromisoformat(created_at) - EPOCH) // timedelta(microseconds=1)
    milliseconds, microseconds = divmod(epoch_us, 1000)
    value = (milliseconds << 80) | (0x7 << 76) | (microseconds << 64) | (0b10 << 62) | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def created_at_of(message_uuid: str) -> str | None:
    """The sk a uuid made by `new` names; None for any other uuid (a version-4 one, say)."""
    try:
        parsed = uuid.UUID(message_uuid)
    except ValueError:
        return None
    if parsed.version != 7:
        return None
    value = parsed.int
    milliseconds, microseconds = value >> 80, (value >> 64) & 0xFFF
    if microseconds > 999:
        return None
    return iso(EPOCH + timedelta(microseconds=milliseconds * 1000 + microseconds))
