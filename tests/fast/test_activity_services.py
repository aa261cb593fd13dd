"""Cruds and replies (services/activities.py) over the in-memory activities' store: the lists and
their cursors, posting and replying as the caller, search's rules and every refusal. The same
end to end through HTTP: tests/stack/test_activities.py."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from domain.errors import Busy, InvalidInput, MalformedRequest, NotFound
from services import activities
from services.activities import (CreateActivity, CreateReply, HomeActivities, NotificationsActivities,
                                 SearchActivities, ShowActivity, ShowStatus, UserActivities, UserProfile)
from tests.expect import refused


def crud(world, who, text, ttl="7-days"):
    return CreateActivity.run(world.parts.activities, who, {"message": text, "ttl": ttl})


def home(world, limit=20, cursor=None):
    return HomeActivities.run(world.parts.activities, world.parts.cursors, limit, cursor)


def test_a_crud_is_posted_as_the_caller_whatever_the_body_says(world, ana):
    made = CreateActivity.run(world.parts.activities, ana, {"message": "  hi all ", "ttl": "1-hour",
                                                           "user_handle": "bo"})
    assert (made["handle"], made["display_name"], made["message"]) == ("ana", "Ana A", "hi all")
    assert made["replies"] == [] and made["replies_count"] == 0 and made["expires_at"] > made["created_at"]


@pytest.mark.parametrize("body, kind, code", [
    ({"message": "hi", "ttl": "forever"}, InvalidInput, "ttl_invalid"),
    ({"message": "hi"}, InvalidInput, "ttl_invalid"),
    ({"message": "hi", "ttl": ["7-days"]}, InvalidInput, "ttl_invalid"),
    ({"message": "x" * 281, "ttl": "7-days"}, InvalidInput, "message_exceed_max_chars"),
    ({"message": "   ", "ttl": "7-days"}, InvalidInput, "message_blank"),
    ({"message": None, "ttl": "7-days"}, InvalidInput, "message_invalid"),
    ([], MalformedRequest, "body_invalid"),
])
def test_each_bad_crud_is_refused_and_nothing_is_posted(world, ana, body, kind, code):
    refused(lambda: CreateActivity.run(world.parts.activities, ana, body), kind, code)
    assert home(world) == ([], None)


def test_a_crud_of_280_characters_is_posted_whole(world, ana):
    assert len(crud(world, ana, "y" * activities.CRUD_MAX_LENGTH)["message"]) == 280


@pytest.mark.parametrize("ttl", sorted(activities.TTLS))
def test_every_lifetime_the_frontend_offers_is_taken(world, ana, ttl):
    assert crud(world, ana, f"lives {ttl}", ttl)["expires_at"]


def test_home_is_newest_first_and_its_pages_miss_and_repeat_nothing(world, ana, bo):
    for i in range(5):
        crud(world, ana if i % 2 else bo, f"crud {i}")
    seen, cursor = [], None
    while True:
        page, cursor = home(world, 2, cursor)
        seen += [a["message"] for a in page]
        if cursor is None:
            break
    assert seen == [f"crud {i}" for i in reversed(range(5))]


def test_a_home_cursor_is_good_for_home_only(world, ana):
    for i in range(3):
        crud(world, ana, f"crud {i}")
    _, cursor = home(world, 1)
    refused(lambda: SearchActivities.run(world.parts.activities, world.parts.cursors, "crud", 1, cursor),
            MalformedRequest, "cursor_invalid")


def test_a_users_cruds_are_theirs_only(world, ana, bo):
    crud(world, ana, "by ana")
    crud(world, bo, "by bo")
    page, _ = UserActivities.run(world.parts.activities, world.parts.users, world.parts.cursors, "ANA", 20)
    assert [a["message"] for a in page] == ["by ana"]


def test_a_user_without_cruds_has_an_empty_list_and_nobody_is_not_found(world, ana):
    assert UserActivities.run(world.parts.activities, world.parts.users, world.parts.cursors, "ana", 20) == ([], None)
    for handle in ("nobody", "..", "a b"):
        refused(lambda: UserActivities.run(world.parts.activities, world.parts.users, world.parts.cursors,
                                           handle, 20), NotFound, "user_not_found")


def test_a_reply_is_counted_shown_with_its_crud_and_notified_to_its_author(world, ana, bo):
    parent = crud(world, ana, "a question")
    reply = CreateReply.run(world.parts.activities, bo, parent["uuid"], {"message": "an answer"})
    assert reply["reply_to_activity_uuid"] == parent["uuid"] and reply["handle"] == "bo"
    shown = ShowActivity.run(world.parts.activities, parent["uuid"])
    assert shown["replies_count"] == 1 and [r["message"] for r in shown["replies"]] == ["an answer"]
    CreateReply.run(world.parts.activities, ana, parent["uuid"], {"message": "my own reply"})
    notes, _ = NotificationsActivities.run(world.parts.activities, world.parts.cursors, ana, 20)
    assert [n["message"] for n in notes] == ["an answer"], "replies by others only"
    assert NotificationsActivities.run(world.parts.activities, world.parts.cursors, bo, 20) == ([], None)


@pytest.mark.parametrize("target", ["6f1c3c55-0000-4000-8000-00000000dead", "not-a-uuid", ""])
def test_a_reply_to_nothing_is_activity_not_found(world, bo, target):
    refused(lambda: CreateReply.run(world.parts.activities, bo, target, {"message": "hello?"}),
            NotFound, "activity_not_found")


def test_a_bad_reply_is_refused_with_its_code(world, ana, bo):
    parent = crud(world, ana, "a question")
    refused(lambda: CreateReply.run(world.parts.activities, bo, parent["uuid"], {"message": ""}),
            InvalidInput, "message_blank")
    refused(lambda: CreateReply.run(world.parts.activities, bo, parent["uuid"], "text"),
            MalformedRequest, "body_invalid")
    assert ShowActivity.run(world.parts.activities, parent["uuid"])["replies_count"] == 0


@pytest.mark.parametrize("target", ["6f1c3c55-0000-4000-8000-00000000dead", "nope", "../x"])
def test_showing_nothing_is_activity_not_found(world, target):
    refused(lambda: ShowActivity.run(world.parts.activities, target), NotFound, "activity_not_found")


def test_search_finds_a_term_in_any_case_and_takes_wildcards_literally(world, ana):
    crud(world, ana, "Serverless is great")
    crud(world, ana, "100% sure")
    crud(world, ana, "under_score")
    found = lambda term: [a["message"] for a in SearchActivities.run(  # noqa: E731
        world.parts.activities, world.parts.cursors, term, 20)[0]]
    assert found("SERVERLESS") == ["Serverless is great"]
    assert found("0% s") == ["100% sure"]
    assert found("r_s") == ["under_score"]
    assert found("%%%") == []


@pytest.mark.parametrize("term, code", [
    (None, "term_blank"), ("", "term_blank"), ("   ", "term_blank"), ("ab", "term_too_short"),
    ("x" * 101, "term_too_long"), (["aws"], "term_blank"),
])
def test_a_bad_search_term_is_refused(world, term, code):
    refused(lambda: SearchActivities.run(world.parts.activities, world.parts.cursors, term, 20), InvalidInput, code)


def test_searches_beyond_the_slots_are_told_to_wait(world, monkeypatch):
    monkeypatch.setattr(activities, "SEARCH_SLOTS", threading.BoundedSemaphore(1))
    monkeypatch.setattr(activities, "SEARCH_WAIT_SECONDS", 0.01)
    activities.SEARCH_SLOTS.acquire()  # another search holds the only slot
    with pytest.raises(Busy) as busy:
        SearchActivities.run(world.parts.activities, world.parts.cursors, "anything", 20)
    assert busy.value.codes == ["search_busy"] and busy.value.retry_after == 1
    activities.SEARCH_SLOTS.release()
    assert SearchActivities.run(world.parts.activities, world.parts.cursors, "anything", 20) == ([], None)


def test_a_cruds_page_is_the_crud_and_its_replies_oldest_first(world, ana, bo):
    parent = crud(world, ana, "a question")
    first = CreateReply.run(world.parts.activities, bo, parent["uuid"], {"message": "first"})
    CreateReply.run(world.parts.activities, ana, parent["uuid"], {"message": "second"})
    page = ShowStatus.run(world.parts.activities, "ANA", parent["uuid"])
    assert page["activity"]["uuid"] == parent["uuid"] and page["activity"]["replies_count"] == 2
    assert [r["message"] for r in page["replies"]] == ["first", "second"]
    assert ShowStatus.run(world.parts.activities, "bo", first["uuid"])["activity"]["message"] == "first"


@pytest.mark.parametrize("handle, which", [("bo", "parent"), ("nobody", "parent"), ("..", "parent"),
                                           ("ana", "unknown"), ("ana", "not-a-uuid"), ("ana", "expired")])
def test_a_cruds_page_is_404_unless_the_crud_is_that_handles_and_alive(world, ana, bo, handle, which):
    parent = crud(world, ana, "mine")
    if which == "expired":  # a week on, the crud of seven days is gone
        world.parts.activities.clock = lambda: datetime.now(timezone.utc) + timedelta(days=8)
    target = {"parent": parent["uuid"], "expired": parent["uuid"], "unknown": "6f1c3c55-0000-4000-8000-00000000dead",
              "not-a-uuid": "x"}[which]
    refused(lambda: ShowStatus.run(world.parts.activities, handle, target), NotFound, "activity_not_found")


def test_the_final_frontends_profile_is_the_user_and_a_page_of_their_cruds(world, ana, bo):
    for i in range(3):
        crud(world, ana, f"crud {i}")
    crud(world, bo, "not ana's")
    page, cursor = UserProfile.run(world.parts.activities, world.parts.users, world.parts.cursors, "ANA", 2)
    assert page["profile"] == {"uuid": ana["uuid"], "handle": "ana", "display_name": "Ana A", "bio": None,
                               "cognito_user_uuid": "sub-ana", "cruds_count": 3}
    assert [a["message"] for a in page["activities"]] == ["crud 2", "crud 1"]
    rest, last = UserProfile.run(world.parts.activities, world.parts.users, world.parts.cursors, "ana", 2, cursor)
    assert [a["message"] for a in rest["activities"]] == ["crud 0"] and last is None


@pytest.mark.parametrize("handle", ["nobody", "..", "a b"])
def test_a_profile_of_nobody_is_user_not_found(world, handle):
    refused(lambda: UserProfile.run(world.parts.activities, world.parts.users, world.parts.cursors, handle, 20),
            NotFound, "user_not_found")
