"""Who belongs to a conversation: read once from its header item, then cached for good.

A group written by the bootcamp's week-5 backend has no header until bin/ddb/migrate runs: its
participants are then the owners of its two rows (GRP#<owner>), found through the GSI."""
from __future__ import annotations

from lib import ddb as layout
from lib.errors import NotFound
from services.backend import Backend


def participants(backend: Backend, message_group_uuid: str) -> tuple[str, ...] | None:
    def load() -> tuple[str, ...] | None:
        header = backend.ddb.get(layout.header_key(message_group_uuid))
        return None if header is None else tuple(sorted(header["participants"]))

    members = backend.membership.get_or_load(message_group_uuid, load)
    if members is None and not backend.layout_current():
        owners = tuple(sorted({row["pk"][len(layout.GROUP_PREFIX):]
                               for row in backend.ddb.group_rows(message_group_uuid)}))
        if len(owners) == 2:  # both rows seen: the group's participants, for good
            backend.membership.put(message_group_uuid, owners)
        members = owners or None
    return members


def require_participant(backend: Backend, message_group_uuid: str, user_uuid: str) -> tuple[str, ...]:
    members = participants(backend, message_group_uuid)
    # Not yours and does not exist are one answer: a different one would tell anyone signed in
    # who talks to whom (a group's uuid derives from its two participants).
    if members is None or str(user_uuid) not in members:
        raise NotFound("message_group_not_found", detail="no such conversation")
    return members
