"""Checks of client input shared by the services. Each failure is an ApiError with a code."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Any

from domain import identity
from domain.visible_text import is_blank
from domain.errors import MalformedRequest, NotFound, InvalidInput

DIRECT_MESSAGE_MAX_LENGTH = 1024
LIMIT_DEFAULT = 20
LIMIT_MAX = 100
# Matched with fullmatch, never `^...$`: `$` also matches before a final newline.
LIMIT_PATTERN = re.compile(r"[0-9]{1,10}")  # ASCII digits: str.isdigit() also accepts "²"
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces


def message_text(value: Any) -> str:
    """A direct message is 1 to 1024 characters after trimming (a crud: services/activities.py)."""
    return text(value, DIRECT_MESSAGE_MAX_LENGTH)


def text(value: Any, max_length: int, too_long: str = "message_too_long",
         blank: str = "message_blank", invalid: str = "message_invalid") -> str:
    """A text of 1 to `max_length` characters after trimming, storable as it is, and with something
    a reader can see (not only zero-width, bidi or blank-looking characters: domain/visible_text.py)."""
    if not isinstance(value, str):
        raise InvalidInput(invalid, detail="must be a string")
    trimmed = value.strip()
    if not trimmed:
        raise InvalidInput(blank, detail="is blank")
    if len(trimmed) > max_length:
        raise InvalidInput(too_long, detail=f"is over {max_length} characters")
    if "\x00" in trimmed:
        raise InvalidInput(invalid, detail="contains a NUL character")
    try:
        trimmed.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate ("\ud800" in the JSON): not storable
        raise InvalidInput(invalid, detail="is not valid Unicode") from None
    if is_blank(trimmed):
        raise InvalidInput(blank, detail="shows nothing: only invisible characters")
    return trimmed


def canonical_uuid(value: Any, code: str = "message_group_uuid_invalid",
                   not_found: bool | NotFound = False) -> str:
    """The lower-case hyphenated form of a uuid, or an error: `not_found` (or, when True, no such
    conversation) for a path segment, else InvalidInput(code)."""
    if isinstance(value, str) and len(value) == 36:
        try:
            parsed = uuid.UUID(value)
            if str(parsed) == value.lower():
                return str(parsed)
        except ValueError:
            pass
    if isinstance(not_found, NotFound):
        raise not_found
    if not_found:
        raise NotFound("message_group_not_found", detail="no such conversation")
    raise InvalidInput(code, detail="not a uuid")


def handle(value: Any, code: str = "handle_invalid") -> str:
    if not identity.is_handle(value):
        raise InvalidInput(code, detail="not a valid handle")
    return value


def limit(value: str | None) -> int:
    if value is None:
        return LIMIT_DEFAULT
    if not LIMIT_PATTERN.fullmatch(value) or not 1 <= int(value) <= LIMIT_MAX:
        raise MalformedRequest("limit_invalid", detail=f"limit is a whole number from 1 to {LIMIT_MAX}")
    return int(value)


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(value):
        raise MalformedRequest("idempotency_key_invalid", detail="1 to 255 printable ASCII characters")
    return value


def message_time(value: Any, code: str = "up_to_invalid") -> datetime:
    """A message's created_at as the API gives it (ISO-8601 with a time zone), as a moment in UTC
    (years 1 to 9999 there)."""
    if isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            try:
                return moment.astimezone(timezone.utc)
            except (OverflowError, ValueError):  # 0001-01-01T00:00+01:00 is before year 1 in UTC
                raise InvalidInput(code, detail="a time out of range") from None
    raise InvalidInput(code, detail="the created_at of a message, e.g. 2026-01-01T00:00:00.000000+00:00")

