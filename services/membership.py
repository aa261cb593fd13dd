"""Who belongs to a conversation: read once from its header item, then cached for good."""
from __future__ import annotations

from lib import ddb as layout
from lib.errors import Forbidden, NotFound
from services.backend import Backend


def participants(backend: Backend, message_group_uuid: str) -> tuple[str, ...] | None:
    known = backend.membership.get(message_group_uuid)
    if known is not None:
        return known
    header = backend.ddb.get(layout.header_key(message_group_uuid))
    if header is None:
        return None  # not cached: the group may be created later
    members = tuple(sorted(header["participants"]))
    backend.membership.put(message_group_uuid, members)
    return members


def require_participant(backend: Backend, message_group_uuid: str, user_uuid: str) -> tuple[str, ...]:
    members = participants(backend, message_group_uuid)
    if members is None:
        raise NotFound("message_group_not_found", detail="no such conversation")
    if str(user_uuid) not in members:
        raise Forbidden("not_a_participant", detail="you are not part of this conversation")
    return members
