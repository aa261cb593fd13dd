"""The names a conversation list shows are the users' current ones.

A user's display name lives in PostgreSQL, but the messages table copies it: each participant's
row names the other, each message names its sender (single-table denormalisation: a page of
messages or conversations is one Query, 1 read unit, with no join). When a name changes, those
copies are not rewritten (one user's rows and messages can be thousands of items, each a write).
Names are resolved when a page is read instead: each item also carries the uuid whose names it
copied, and the current names come from a per-process cache of users kept NAMES_SECONDS at most,
so every process shows a new name within a minute of the change, at no DynamoDB cost. A page
costs at most one PostgreSQL query, for the users it names that the cache does not hold
(docs/data-model.md, "Names").
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, TypeVar

from domain.conversations import Conversation, Message
from lib.cache import Cache
from lib.users import UserStore

Named = TypeVar("Named", Message, Conversation)

# How long this process shows a name it read (the bound on an old name after a change).
NAMES_SECONDS = 30.0


class Names:
    """Current names by user uuid: the users' store, through a cache of NAMES_SECONDS."""

    def __init__(self, users: UserStore, cache: Cache[Mapping[str, Any]] | None = None):
        self.users = users
        self.cache: Cache[Mapping[str, Any]] = cache if cache is not None else Cache(
            max_size=100_000, ttl=NAMES_SECONDS)

    def of(self, uuids: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        """uuid -> {display_name, handle} now, for those of `uuids` that are users (one query at
        most, for the ones not cached)."""
        wanted = {u for u in uuids if u}
        known = {u: self.cache.get(u) for u in wanted}
        missing = [u for u, names in known.items() if names is None]
        if missing:
            for uuid, user in self.users.names_of(missing).items():
                self.cache.put(uuid, user)
                known[uuid] = user
        return {u: names for u, names in known.items() if names is not None}

    def remember(self, user: Mapping[str, Any]) -> None:
        """A user's names as they are now (after a change here: this process shows it at once)."""
        self.cache.put(str(user["uuid"]), user)

    def on_messages(self, messages: list[Message]) -> list[Message]:
        return self._current(messages, "sender_uuid")

    def on_conversations(self, conversations: list[Conversation]) -> list[Conversation]:
        return self._current(conversations, "other_uuid")

    def _current(self, items: list[Named], whose: str) -> list[Named]:
        """`items` with the names of the user each names (its `whose` uuid) as they are now; an
        item naming nobody known keeps the names it copied."""
        current = self.of(getattr(item, whose) for item in items)
        shown = []
        for item in items:
            names = current.get(getattr(item, whose))
            # An item copied the names it shows, so they are nearly always current: replaced (a
            # new tuple) only when they are not.
            if names is not None and (item.display_name != names["display_name"] or item.handle != names["handle"]):
                item = item._replace(display_name=names["display_name"], handle=names["handle"])
            shown.append(item)
        return shown
