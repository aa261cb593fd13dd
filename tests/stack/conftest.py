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


@pytest.fixture
def app_with_stream(settings, fresh_table, tmp_path, monkeypatch):
    """The app in this process over a fresh table, and the table's stream as the template's mapping
    filters it, through the stream Lambda's own handler (the local worker): `client` (Flask's),
    `auth[handle]` (bayko's and londo's headers), `drain()` (apply what the stream holds)."""
    from types import SimpleNamespace

    from app import create_app
    from devstack import access_token
    from devstack.stream_worker import StreamWorker, lambda_environment, load_lambda

    for name, value in lambda_environment(fresh_table).items():
        monkeypatch.setenv(name, value)
    worker = StreamWorker(fresh_table, load_lambda().lambda_handler, tmp_path / "cp.json")
    app = create_app(fresh_table.with_(cursor_secret="through the stream"))
    try:
        yield SimpleNamespace(client=app.test_client(), drain=worker.drain,
                              auth={h: {"Authorization": f"Bearer {access_token(settings, h)}"}
                                    for h in ("bayko", "londo")})
    finally:
        app.extensions["parts"].db.close()
