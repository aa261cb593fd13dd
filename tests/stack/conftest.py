"""Fixtures of the tests that run the API through HTTP: users made in PostgreSQL and the local
Cognito pool (fresh ones, so that exact assertions about whole lists hold whatever else the suite
has written), the seeded ones, and a conversation between two fresh users."""
from __future__ import annotations

import pytest

from lib.config import Settings
from lib.conversations import layout
from tests.http_api import User, Users, send


@pytest.fixture(scope="module")
def users(settings: Settings):
    made = Users(settings)
    yield made
    made.close()


@pytest.fixture(scope="module")
def seeded(api, users: Users) -> dict[str, User]:
    return {h: users.seeded(api, h) for h in ("andrewbrown", "bayko", "londo")}


@pytest.fixture(scope="module")
def seeded_group(seeded) -> str:
    """The seeded conversation of andrewbrown and bayko."""
    return layout.group_uuid_for(seeded["andrewbrown"].uuid, seeded["bayko"].uuid)


@pytest.fixture
def pair(api, users: Users) -> tuple[User, User, str]:
    """Two fresh users and the conversation the first started with the second."""
    a, b = users.make("pa"), users.make("pb")
    group = send(api, a, "first", to=b)["message_group_uuid"]
    return a, b, group
