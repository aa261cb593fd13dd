"""Who belongs to a conversation: read once from its header item, then cached for good.

A group written by the bootcamp's week-5 backend has no header until bin/ddb/migrate runs: its
participants are then the owners of its two rows (GRP#<owner>), found through the GSI.

Only a participant is answered from the cache. Anyone else costs the same reads whether the
conversation exists or not, and gets the same 404: a group's uuid derives from its two
participants' public uuids, so a faster 404 for a cached group would tell anyone signed in who
talks to whom."""
from __future__ import annotations

from lib import ddb as layout
from lib.errors import NotFound
from services.backend import Backend


def _read(backend: Backend, message_group_uuid: str) -> tuple[str, ...] | None:
    """The participants as the table has them (the reads of a cache miss), cached once known."""
    header = backend.ddb.get(layout.header_key(message_group_uuid))
    if header is not None:
        members = tuple(sorted(header["participants"]))
        backend.membership.put(message_group_uuid, members)
        return members
    if backend.layout_current():
        return None
    owners = tuple(sorted({row["pk"][len(layout.GROUP_PREFIX):]
                           for row in backend.ddb.group_rows(message_group_uuid)}))
    if len(owners) == 2:  # both rows seen: the group's participants, for good
        backend.membership.put(message_group_uuid, owners)
    return owners or None


def require_participant(backend: Backend, message_group_uuid: str, user_uuid: str) -> tuple[str, ...]:
    members = backend.membership.get(message_group_uuid)
    if members is not None and str(user_uuid) in members:
        return members
    # Not a participant, or not known here yet: the table is read in either case, so that "not
    # yours" and "does not exist" are one answer, in status, body, headers and time.
    members = _read(backend, message_group_uuid)
    if members is None or str(user_uuid) not in members:
        raise NotFound("message_group_not_found", detail="no such conversation")
    return members
