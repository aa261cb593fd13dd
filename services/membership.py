"""Who belongs to a conversation: read once from its header item, then cached for good."""
from __future__ import annotations

from lib import ddb as layout
from lib.errors import NotFound
from services.backend import Backend


def participants(backend: Backend, message_group_uuid: str) -> tuple[str, ...] | None:
    def load() -> tuple[str, ...] | None:
        header = backend.ddb.get(layout.header_key(message_group_uuid))
        return None if header is None else tuple(sorted(header["participants"]))

    return backend.membership.get_or_load(message_group_uuid, load)


def require_participant(backend: Backend, message_group_uuid: str, user_uuid: str) -> tuple[str, ...]:
    members = participants(backend, message_group_uuid)
    # Not yours and does not exist are one answer: a different one would tell anyone signed in
    # who talks to whom (a group's uuid derives from its two participants).
    if members is None or str(user_uuid) not in members:
        raise NotFound("message_group_not_found", detail="no such conversation")
    return members
