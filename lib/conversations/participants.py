"""Who takes part in a conversation: the one place that reads it, and the one cache of it.

A conversation's participants are fixed when it begins (its header, GROUP#<uuid>, written first
of its items, names them), so what is read once is kept for good, per process. A group the
bootcamp's week-5 backend wrote has no header until bin/ddb/migrate (or the stream Lambda's
adoption) gives it one: its participants are then its two rows' owners, as the index shows them.

Everyone asks here: the API before reading or posting (`is_participant`), a first message for the
pair's conversation (`conversation_of_pair`), the stream Lambda for the header's copy of both
participants' names (`header`), the events Lambda for whom a message's event goes to (`both`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from lib.cache import Cache
from lib.conversations import layout, week5
from lib.conversations.rows import IndexBehind, group_rows
from lib.ddb import Ddb

# How many groups a process remembers (a few dozen bytes each).
CACHE_SIZE = 100_000
# How long the table's layout mark is trusted before it is read again (a migration may end).
LAYOUT_RECHECK_SECONDS = 300.0


@dataclass(frozen=True)
class Header:
    """What a group's header tells: its participants (sorted), the fixed part of each one's row
    (the other participant's uuid and names, by owner) when it carries their profiles, and when
    the group began. A week-5 group without a header is remembered with `has_header` False and
    its rows' owners as participants."""
    owners: tuple[str, ...]
    rows: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    created_at: str = ""
    has_header: bool = True


def header_of(group: str, item: Mapping[str, Any]) -> Header:
    """A header item as the Header it tells."""
    people = tuple(sorted(str(p) for p in item["participants"]))
    profiles = item.get("profiles") or {}
    rows: dict[str, dict[str, Any]] = {}
    if len(people) == 2 and all(p in profiles for p in people):
        for me, other in (people, people[::-1]):
            rows[me] = {"pk": layout.group_pk(me), "message_group_uuid": group, "user_uuid": other,
                        "user_display_name": profiles[other]["display_name"],
                        "user_handle": profiles[other]["handle"]}
    return Header(owners=people, rows=rows, created_at=item.get("created_at", ""))


class Participants:
    def __init__(self, table: Ddb, index: str = layout.GSI_NAME, groups: "Cache[Header] | None" = None):
        """`groups`: the cache of what is known of each group, when it is to outlive this object
        (a Lambda container's, kept across invocations)."""
        self.table, self.index = table, index
        # message_group_uuid -> Header
        self.groups: Cache[Header] = Cache(max_size=CACHE_SIZE) if groups is None else groups
        # a pair's derived group uuid -> the pair's conversation, where that is another (a week-5
        # group, with a random uuid)
        self.pairs: Cache[str] = Cache(max_size=CACHE_SIZE)
        self.layout: Cache[int] = Cache(max_size=1, ttl=LAYOUT_RECHECK_SECONDS)

    def layout_current(self) -> bool:
        """Whether every group of the table has its header (no week-5 group left to look for)."""
        version = self.layout.get_or_load("version", lambda: week5.layout_version(self.table))
        return version >= layout.LAYOUT_VERSION

    def header(self, group: str) -> Header | None:
        """The group's header (a consistent read, then remembered); None when it has none (a
        week-5 group, or not a conversation)."""
        known = self.groups.get(group)
        if known is None:
            known = self._read_header(group)
        return known if known is not None and known.has_header else None

    def of(self, group: str) -> tuple[str, ...] | None:
        """The participants as the API needs them: the header's, or, on a table that may still
        hold week-5 groups, the rows' owners the index shows (possibly one of the two while it
        lags). None: not a conversation."""
        known = self.groups.get(group)
        return known.owners if known is not None else self._read(group)

    def _read(self, group: str) -> tuple[str, ...] | None:
        """`of`, read from the table whatever the cache holds (the reads of a cache miss)."""
        header = self._read_header(group)
        if header is not None:
            return header.owners
        if self.layout_current():
            return None
        return self._from_rows(group) or None

    def _read_header(self, group: str) -> Header | None:
        item = self.table.get(layout.header_key(group),
                              attributes=("participants", "profiles", "created_at", "message_group_uuid"))
        if item is None:
            return None
        return self.remember_header(group, item)

    def both(self, group: str) -> tuple[str, ...]:
        """Both participants, for what every one of them must get (a message's live events): the
        header's, or a headerless group's rows' owners whatever the layout mark says (a week-5
        writer may still add groups to a migrated table). IndexBehind while the index shows one
        of the two rows; empty: not a conversation."""
        known = self.groups.get(group) or self._read_header(group)
        if known is not None:
            return known.owners
        owners = self._from_rows(group)
        if len(owners) == 1:
            raise IndexBehind(f"group {group}: the index shows one participant")
        return owners

    def _from_rows(self, group: str) -> tuple[str, ...]:
        owners = layout.owners_of(group_rows(self.table, group, self.index))
        if len(owners) == 2:  # both rows seen: the group's participants, for good
            self.groups.put(group, Header(owners, has_header=False))
        return owners

    def is_participant(self, group: str, user_uuid: str) -> bool:
        """Whether the user takes part in the conversation. Only a participant is answered from
        the cache. Anyone else costs the same reads whether the conversation exists or not: a
        group's uuid derives from its two participants' public uuids, so a faster "no" for a
        cached group would tell anyone signed in who talks to whom."""
        known = self.groups.get(group)
        if known is not None and str(user_uuid) in known.owners:
            return True
        members = self._read(group)
        return members is not None and str(user_uuid) in members

    def conversation_of_pair(self, derived: str, user_a: str, user_b: str) -> str | None:
        """The pair's conversation when this process knows it, or (on a week-5 table) the table
        has one under a random uuid; None: the first message creates it at `derived`."""
        known = self.pairs.get(derived) or (derived if self.groups.get(derived) else None)
        if known is None and not self.layout_current():
            # never start a second conversation beside a week-5 one
            known = week5.conversation_between(self.table, user_a, user_b)
            if known is not None:
                self.pairs.put(derived, known)
        return known

    def remember_header(self, derived: str, item: Mapping[str, Any]) -> Header:
        """What a header says, written or read at `derived`: the group's participants, and, for an
        alias header of a week-5 group, the pair's conversation (so that a first message by handle
        goes there, whoever read the alias first). The Header it tells."""
        actual = item.get("message_group_uuid", derived)
        header = header_of(derived, item)
        self.groups.put(derived, header)
        if actual != derived:  # an alias: whoever reads it learns where the pair's messages are
            self.pairs.put(derived, actual)
        return header
