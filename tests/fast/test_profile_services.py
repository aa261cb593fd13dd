"""A user's own profile (services/profile.py) and the current names every list shows
(services/names.py), over the in-memory table and users: the name a conversation row or a
message copied is shown as the user's current one, at once in the process that made the change
and within NAMES_SECONDS in any other."""
from __future__ import annotations

import pytest

from domain.errors import InvalidInput, MalformedRequest
from lib.cache import Cache
from services import names as names_module
from services.create_message import CreateMessage
from services.message_groups import MessageGroups
from services.messages import Messages
from services.names import Names
from services.profile import BIO_MAX_LENGTH, UpdateProfile
from tests.expect import refused


def update(world, caller, body):
    parts = world.parts
    return UpdateProfile.run(parts.users, parts.names, parts.known_users, caller, body)


@pytest.fixture
def group(world, ana, bo) -> str:
    return CreateMessage.run(world.parts.conversations, world.parts.users, world.parts.blocks, ana,
                             {"handle": "bo", "message": "hello"})["message_group_uuid"]


def shown(world, names: Names, ana, bo, group) -> tuple[str, str]:
    """(the name bo's conversation list gives ana, the name ana's message carries in the page)."""
    conversations, _ = MessageGroups.run(world.parts.conversations, names, world.parts.cursors, bo, 20)
    messages, _ = Messages.run(world.parts.conversations, names, world.parts.cursors, bo, group, 20)
    return conversations[0]["display_name"], messages[0]["display_name"]


def test_a_profile_update_answers_the_callers_profile(world, ana):
    assert update(world, ana, {"display_name": "  Ana Reborn ", "bio": " Serverless fan "}) == {
        "uuid": ana["uuid"], "handle": "ana", "display_name": "Ana Reborn", "bio": "Serverless fan"}
    assert update(world, ana, {"bio": ""})["display_name"] == "Ana Reborn", "what is absent is kept"
    assert world.parts.users.profile("ana")["bio"] == ""


@pytest.mark.parametrize("body, kind, code", [
    ({"bio": "x" * (BIO_MAX_LENGTH + 1)}, InvalidInput, "bio_too_long"),
    ({"bio": 7}, InvalidInput, "bio_invalid"),
    ({"bio": "nul\x00"}, InvalidInput, "bio_invalid"),
    ({"display_name": ""}, InvalidInput, "display_name_invalid"),
    ({"display_name": "\u200b\u2060"}, InvalidInput, "display_name_invalid"),
    ({"display_name": "L\u03bfndo"}, InvalidInput, "display_name_invalid"),
    ({"display_name": "x" * 65}, InvalidInput, "display_name_invalid"),
    ({"display_name": ["Ana"]}, InvalidInput, "display_name_invalid"),
    ([], MalformedRequest, "body_invalid"),
])
def test_a_bad_profile_is_refused_and_nothing_changes(world, ana, body, kind, code):
    refused(lambda: update(world, ana, body), kind, code)
    assert world.parts.users.profile("ana") == {**world.parts.users.profile("ana"), "display_name": "Ana A", "bio": None}


def test_a_bio_of_160_characters_is_kept_whole(world, ana):
    assert len(update(world, ana, {"bio": "é" * BIO_MAX_LENGTH})["bio"]) == BIO_MAX_LENGTH


def test_the_process_that_renamed_shows_the_new_name_at_once(world, ana, bo, group):
    assert shown(world, world.parts.names, ana, bo, group) == ("Ana A", "Ana A")
    update(world, ana, {"display_name": "Ana Renamed"})
    assert shown(world, world.parts.names, ana, bo, group) == ("Ana Renamed", "Ana Renamed")


def test_another_process_shows_the_new_name_once_its_names_expire(world, ana, bo, group, monkeypatch):
    now = [0.0]
    elsewhere = Names(world.parts.users, Cache(ttl=names_module.NAMES_SECONDS, clock=lambda: now[0]))
    assert shown(world, elsewhere, ana, bo, group) == ("Ana A", "Ana A")
    update(world, ana, {"display_name": "Ana Renamed"})  # through another process's names
    assert shown(world, elsewhere, ana, bo, group) == ("Ana A", "Ana A"), "within its NAMES_SECONDS"
    now[0] += names_module.NAMES_SECONDS + 0.1
    assert shown(world, elsewhere, ana, bo, group) == ("Ana Renamed", "Ana Renamed")
    assert names_module.NAMES_SECONDS <= 60, "the contract: within a minute"


def test_a_page_asks_the_users_store_once_for_the_names_it_does_not_hold(world, ana, bo, group):
    asked = []
    real = world.parts.users.names_of
    world.parts.users.names_of = lambda uuids: (asked.append(sorted(uuids)), real(uuids))[1]
    names = Names(world.parts.users)
    for _ in range(3):
        shown(world, names, ana, bo, group)
    assert asked == [[ana["uuid"]]], "once, for the one name the page shows"


def test_the_callers_next_messages_carry_the_new_name(world, ana, bo, group):
    from services.current_user import CurrentUser

    parts = world.parts
    auth = f"Bearer {parts.tokens.issue('sub-ana')}"
    assert CurrentUser.run(parts.tokens, parts.users, parts.known_users, auth)["display_name"] == "Ana A"
    update(world, ana, {"display_name": "Ana Renamed"})
    caller = CurrentUser.run(parts.tokens, parts.users, parts.known_users, auth)
    sent = CreateMessage.run(parts.conversations, parts.users, parts.blocks, caller, {"message_group_uuid": group, "message": "hi"})
    assert sent["display_name"] == "Ana Renamed"
