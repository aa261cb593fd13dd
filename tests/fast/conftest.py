"""The app's parts over in-memory twins of its adapters (tests/fakes.py, tests/memory_table.py),
wired as services/bootstrap.py wires the real ones, for the services' fast tests."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from domain.cursors import Cursors
from lib.cache import Cache
from lib.config import Settings
from lib.conversations import table_setup
from lib.conversations.store import ConversationStore
from lib.conversations.stream import RowMover, apply_batch
from services.bootstrap import Parts
from services.names import Names
from tests.fakes import FakeTokens, MemoryActivities, MemoryBlocks, MemoryEventLog, MemoryUsers, quiet_hub
from tests.memory_table import MemoryTable


@dataclass
class World:
    """The parts, and what a test does around them: people, and the stream Lambda's turn."""
    parts: Parts
    table: MemoryTable

    def person(self, handle: str, display_name: str | None = None) -> dict[str, Any]:
        """A user ({uuid, display_name, handle}) with a Cognito identity `sub-<handle>`."""
        return self.parts.users.add(handle, display_name, cognito_user_id=f"sub-{handle}")

    def settle(self) -> None:
        """What the stream Lambda does with everything written since: the rows follow."""
        assert apply_batch(self.table.stream_records(), RowMover(self.table)) == {"batchItemFailures": []}


@pytest.fixture
def world() -> World:
    table = MemoryTable(exists=False)
    table_setup.create_table(table)
    table.stream_records()  # the layout mark
    users = MemoryUsers()
    settings = Settings(cursor_secret="fast", events_tickets_per_user=3)
    parts = Parts(settings=settings, db=None, conversations=ConversationStore(table), users=users,  # type: ignore[arg-type]
                  names=Names(users),  # type: ignore[arg-type]
                  activities=MemoryActivities(users), events=MemoryEventLog(), tokens=FakeTokens(),  # type: ignore[arg-type]
                  cursors=Cursors(b"fast"), known_users=Cache(max_size=100, ttl=60.0), attributes_of=None,
                  table_probe=table, readiness=Cache(max_size=1, ttl=5.0), live=quiet_hub(),  # type: ignore[arg-type]
                  blocks=MemoryBlocks(users))  # type: ignore[arg-type]
    yield World(parts, table)
    parts.live.close_all()


@pytest.fixture
def ana(world) -> dict[str, Any]:
    return world.person("ana", "Ana A")


@pytest.fixture
def bo(world) -> dict[str, Any]:
    return world.person("bo", "Bo B")

