"""The contracts of the PostgreSQL adapters the services use: the same tests against the real one
(over the suite's PostgreSQL) and against the in-memory twin of the fast tier (tests/fakes.py),
so that the twins cannot drift. The memory halves are part of the fast tier; the messages table's
twin has its own contract (test_table_contract.py)."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from domain.identity import EmailUnverified, UserConflict
from domain.live_events import NewEvent
from lib import event_log
from lib.activities import ActivityStore
from lib.blocks import BlockStore
from lib.db import Db
from lib.event_log import EventLog
from lib.users import UserStore
from tests.fakes import MemoryActivities, MemoryBlocks, MemoryEventLog, MemoryUsers

MEMORY = pytest.param("memory", marks=pytest.mark.fast)


@pytest.fixture(scope="module")
def db(request):
    made = Db(request.getfixturevalue("settings"))
    yield made
    made.close()


@pytest.fixture(params=[MEMORY, "postgres"])
def stores(request):
    """(users, activities, event log), all real or all twins."""
    if request.param == "memory":
        users = MemoryUsers()
        return users, MemoryActivities(users), MemoryEventLog()
    db = request.getfixturevalue("db")
    return UserStore(db), ActivityStore(db), EventLog(db)


def tag() -> str:
    return uuid.uuid4().hex[:10]


def attributes(handle: str, **changes) -> dict[str, str]:
    return {"sub": f"sub-{tag()}", "email": f"{handle}@example.test", "email_verified": "true",
            "preferred_username": handle, "name": f"Name {handle}", **changes}


def new_user(users, prefix: str = "u") -> dict:
    made = attributes(f"{prefix}{tag()}")
    users.create(made)
    return users.by_identity(made["sub"])


# -- the users' store --------------------------------------------------------------------------------
def test_a_user_made_from_attributes_is_found_by_identity_and_by_handle_in_any_case(stores):
    users, _, _ = stores
    made = attributes(f"Mixed{tag()}")
    uuid_ = users.create(made)
    found = users.by_identity(made["sub"])
    assert found == {"uuid": uuid_, "display_name": made["name"], "handle": made["preferred_username"]}
    assert users.by_handle(made["preferred_username"].upper()) == found
    assert users.by_handle(f"nobody{tag()}") is None and users.by_identity("sub-nobody") is None


def test_making_the_same_identity_again_finds_it(stores):
    users, _, _ = stores
    made = attributes(f"again{tag()}")
    assert users.create(made) == users.create(made)


def test_an_unverified_email_makes_nobody(stores):
    users, _, _ = stores
    made = attributes(f"unverified{tag()}", email_verified="false")
    with pytest.raises(EmailUnverified):
        users.create(made)
    assert users.by_identity(made["sub"]) is None


def test_a_taken_handle_or_email_is_a_conflict(stores):
    users, _, _ = stores
    first = attributes(f"first{tag()}")
    users.create(first)
    with pytest.raises(UserConflict) as handle:
        users.create(attributes(first["preferred_username"].upper(), email=f"other{tag()}@example.test"))
    assert handle.value.code == "handle_taken"
    with pytest.raises(UserConflict) as email:
        users.create(attributes(f"second{tag()}", email=first["email"].upper()))
    assert email.value.code == "email_taken"


def test_linking_takes_an_identity_nobody_else_has(stores):
    users, _, _ = stores
    a, b = new_user(users, "a"), new_user(users, "b")
    sub = f"sub-{tag()}"
    assert users.link(a["uuid"], sub, replace=True)
    assert not users.link(b["uuid"], sub, replace=True), "one identity, one user"
    assert not users.link(a["uuid"], f"sub-{tag()}"), "a linked user is re-linked only when replacing"
    assert users.by_identity(sub) == a
    listed = {u["handle"]: u for u in users.everyone()}
    assert listed[a["handle"]]["cognito_user_id"] == sub and listed[a["handle"]]["email"].endswith("@example.test")


def test_a_profile_counts_the_users_live_cruds_and_names_their_identity(stores):
    users, activities, _ = stores
    made = attributes(f"prof{tag()}")
    users.create(made)
    me = users.by_identity(made["sub"])
    for n in range(2):
        activities.create(me["uuid"], f"crud {n}", "1 day")
    activities.reply(me["uuid"], "a reply is no crud", activities.create(new_user(users)["uuid"], "theirs", "1 day"))
    profile = users.profile(me["handle"].upper())
    assert profile == {"uuid": me["uuid"], "handle": me["handle"], "display_name": me["display_name"], "bio": None,
                       "cognito_user_uuid": made["sub"], "cruds_count": 2}
    assert users.profile(f"nobody{tag()}") is None


def test_a_profile_update_changes_what_is_given_and_names_are_read_in_one_go(stores):
    users, _, _ = stores
    a, b = new_user(users, "a"), new_user(users, "b")
    assert users.update_profile(a["uuid"], "New Name", "hello") == {
        "uuid": a["uuid"], "handle": a["handle"], "display_name": "New Name", "bio": "hello"}
    assert users.update_profile(a["uuid"], None, "only the bio")["display_name"] == "New Name"
    assert users.update_profile(str(uuid.uuid4()), "Nobody", None) is None
    names = users.names_of([a["uuid"], b["uuid"], str(uuid.uuid4())])
    assert names == {a["uuid"]: {"uuid": a["uuid"], "display_name": "New Name", "handle": a["handle"]},
                     b["uuid"]: b}


# -- the activities' store ------------------------------------------------------------------------------
def test_a_crud_reads_back_with_the_contracts_fields(stores):
    users, activities, _ = stores
    me = new_user(users)
    made = activities.show(activities.create(me["uuid"], "hello world", "7 days"))
    assert set(made) == {"uuid", "display_name", "handle", "message", "created_at", "expires_at", "replies_count",
                         "reposts_count", "likes_count", "reply_to_activity_uuid", "replies"}
    assert (made["handle"], made["message"], made["replies"], made["replies_count"]) == (me["handle"], "hello world", [], 0)
    assert made["created_at"].endswith("+00:00") and len(made["created_at"]) == 32


def test_a_users_list_is_newest_first_one_more_than_asked_and_resumes_after_a_position(stores):
    users, activities, _ = stores
    me = new_user(users)
    for n in range(4):
        activities.create(me["uuid"], f"crud {n}", "1 day")
    page = activities.by_user(me["handle"].upper(), 2)
    assert [a["message"] for a in page] == ["crud 3", "crud 2", "crud 1"]
    last = page[1]
    rest = activities.by_user(me["handle"], 2, (last["created_at"], last["uuid"]))
    assert [a["message"] for a in rest] == ["crud 1", "crud 0"]


def test_replies_are_counted_shown_oldest_first_and_notified_to_the_author_only(stores):
    users, activities, _ = stores
    author, other = new_user(users, "author"), new_user(users, "other")
    parent = activities.create(author["uuid"], "a question", "1 day")
    first = activities.reply(other["uuid"], "first answer", parent)
    activities.reply(author["uuid"], "my own answer", parent)
    shown = activities.show(parent)
    assert shown["replies_count"] == 2 and [r["message"] for r in shown["replies"]] == ["first answer", "my own answer"]
    assert activities.show(first)["reply_to_activity_uuid"] == parent
    notes = activities.notifications(author["uuid"], author["handle"], 20)
    assert [n["message"] for n in notes] == ["first answer"] and "replies" not in notes[0]
    assert activities.reply(other["uuid"], "to nothing", str(uuid.uuid4())) is None


def test_an_activity_is_shown_for_its_own_handle_only(stores):
    users, activities, _ = stores
    author, other = new_user(users, "author"), new_user(users, "other")
    made = activities.create(author["uuid"], "mine", "1 day")
    activities.reply(other["uuid"], "a reply", made)
    shown = activities.of_handle(author["handle"].upper(), made)
    assert shown == activities.show(made) and [r["message"] for r in shown["replies"]] == ["a reply"]
    assert activities.of_handle(other["handle"], made) is None
    assert activities.of_handle(author["handle"], str(uuid.uuid4())) is None


def test_search_is_case_insensitive_and_takes_wildcards_literally(stores):
    users, activities, _ = stores
    me, word = new_user(users), f"zq{tag()}"
    activities.create(me["uuid"], f"{word.upper()} 100% sure", "1 day")
    activities.create(me["uuid"], f"{word} 100 percent", "1 day")
    assert [a["message"] for a in activities.search(f"{word} 100%", 20)] == [f"{word.upper()} 100% sure"]
    assert len(activities.search(word, 20)) == 2 and activities.search(f"{word}_", 20) == []


# -- the event log ------------------------------------------------------------------------------------
def event(user: str, n: int, key: str | None = None) -> NewEvent:
    return NewEvent(user, "message", {"n": n}, key or f"key-{n}")


def test_events_are_numbered_per_user_and_a_known_key_is_skipped(stores):
    _, _, log = stores
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert log.head(a) == 0
    assert log.append([event(a, 1), event(b, 1), event(a, 2), event(a, 1)]) == {a: 2, b: 1}
    assert log.append([event(a, 1)]) == {}, "a duplicate delivery takes no number"
    assert [(e.seq, e.kind, e.data) for e in log.after(a, 0)] == [(1, "message", '{"n": 1}'), (2, "message", '{"n": 2}')]
    assert log.head(a) == 2 and [e.seq for e in log.after(a, 1)] == [2]


def test_a_page_of_the_log_is_bounded_in_count_and_bytes_but_holds_one_event_at_least(stores):
    _, _, log = stores
    user = str(uuid.uuid4())
    log.append([NewEvent(user, "message", {"text": "x" * 100}, f"k{n}") for n in range(5)])
    assert [e.seq for e in log.after(user, 0, limit=3)] == [1, 2, 3]
    assert [e.seq for e in log.after(user, 0, max_bytes=150)] == [1, 2]
    assert [e.seq for e in log.after(user, 0, max_bytes=1)] == [1]


def test_resuming_sends_what_was_missed_or_says_reset(stores):
    _, _, log = stores
    user = str(uuid.uuid4())
    log.append([event(user, n) for n in range(1, 4)])
    assert log.resume(user, None) == (3, False)
    assert log.resume(user, "1") == (1, False)
    assert log.resume(user, "3") == (3, False)
    for unknown in ("9", "x", "-1", "1" * 30):
        assert log.resume(user, unknown) == (3, True)


def test_a_deletion_erases_every_event_showing_the_message_and_any_that_comes_later(stores):
    _, _, log = stores
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    shown, other = f"g-{tag()}/t1", f"g-{tag()}/t2"
    log.append([NewEvent(u, "message", {"text": "secret"}, f"m-{shown}", shows=shown) for u in (a, b)]
               + [NewEvent(a, "message", {"text": "kept"}, f"m-{other}", shows=other)])
    log.append([NewEvent(u, "message_deleted", {"uuid": "x"}, f"d-{shown}", erases=shown) for u in (a, b)])
    log.append([NewEvent(a, "conversation", {"text": "secret"}, f"c-{shown}", shows=shown)])  # late
    assert [(e.seq, e.kind, e.data) for e in log.after(a, 0)] == [
        (1, "message", None), (2, "message", '{"text": "kept"}'), (3, "message_deleted", '{"uuid": "x"}'),
        (4, "conversation", None)], "erased, numbers kept"
    assert [e.data for e in log.after(b, 0)] == [None, '{"uuid": "x"}']
    assert log.append([NewEvent(a, "message", {"text": "secret"}, f"m-{shown}", shows=shown)]) == {}, \
        "an erased event's key still skips a record delivered again"
    assert log.resume(a, "1") == (1, False) and log.resume(a, "0") == (0, False), "no gap: no reset"


def test_an_edit_refreshes_the_messages_own_events_never_with_an_older_one(stores):
    _, _, log = stores
    a = str(uuid.uuid4())
    ref = f"g-{tag()}/t1"

    def message(kind, text, edited_at, key):
        return NewEvent(a, kind, {"message": text, "edited_at": edited_at}, key, shows=ref,
                        refreshes=kind == "message_changed")

    log.append([message("message", "tpyo", None, "m"),
                NewEvent(a, "conversation", {"message": "tpyo", "unread_count": 1}, "c", shows=ref)])
    log.append([message("message_changed", "typo", "2026-01-01T00:00:02.000000+00:00", "e2")])
    log.append([message("message_changed", "typ", "2026-01-01T00:00:01.000000+00:00", "e1")])  # older, late
    assert [(e.kind, json.loads(e.data)["message"]) for e in log.after(a, 0)] == [
        ("message", "typo"), ("conversation", "tpyo"), ("message_changed", "typo"), ("message_changed", "typo")]
    b, other = str(uuid.uuid4()), f"g-{tag()}/t2"  # a message and its edit in one batch
    log.append([NewEvent(b, "message", {"message": "x", "edited_at": None}, "m2", shows=other),
                NewEvent(b, "message_changed", {"message": "y", "edited_at": "2026-01-01T00:00:03.000000+00:00"},
                         "e3", shows=other, refreshes=True)])
    assert [json.loads(e.data)["message"] for e in log.after(b, 0)] == ["y", "y"]


def test_a_ticket_opens_once_for_its_user_and_a_user_holds_a_few(stores):
    _, _, log = stores
    user = str(uuid.uuid4())
    trusted = time.time() + 300
    tickets = [log.new_ticket(user, trusted, 2) for _ in range(3)]
    assert tickets[0] and tickets[1] and tickets[2] is None
    claimed = log.claim_ticket(tickets[0])
    assert claimed is not None and claimed[0] == user and claimed[1] == pytest.approx(trusted, abs=1)
    assert log.claim_ticket(tickets[0]) is None, "used"
    assert log.claim_ticket("unknown") is None and log.claim_ticket("x" * 200) is None
    assert log.new_ticket(user, trusted, 2), "the used one no longer counts"


def test_a_ticket_does_not_outlive_the_trust_in_its_token(stores):
    _, _, log = stores
    ticket = log.new_ticket(str(uuid.uuid4()), time.time() - 1, 5)
    assert ticket is None or log.claim_ticket(ticket) is None
    assert event_log.TICKET_SECONDS <= 60


# -- blocks -------------------------------------------------------------------------------------------
@pytest.fixture(params=[MEMORY, "postgres"])
def blocking(request):
    """(users, blocks), both real or both twins."""
    if request.param == "memory":
        users = MemoryUsers()
        return users, MemoryBlocks(users)
    db = request.getfixturevalue("db")
    return UserStore(db), BlockStore(db)


def test_a_block_is_made_once_answered_as_it_is_and_works_one_way(blocking):
    users, blocks = blocking
    ana, bo = new_user(users, "ana"), new_user(users, "bo")
    made = blocks.block(ana["uuid"], bo["uuid"])
    assert (made["handle"], made["display_name"]) == (bo["handle"], bo["display_name"]) and made["blocked_at"]
    assert blocks.block(ana["uuid"], bo["uuid"]) == made  # again: the same block, the same time
    assert blocks.between(ana["uuid"], bo["uuid"]) == (True, False)
    assert blocks.between(bo["uuid"], ana["uuid"]) == (False, True)
    assert blocks.blocked_sets([ana["uuid"], bo["uuid"]]) == {ana["uuid"]: {bo["uuid"]}, bo["uuid"]: frozenset()}
    blocks.unblock(ana["uuid"], bo["uuid"])
    blocks.unblock(ana["uuid"], bo["uuid"])  # none left: nothing to do
    assert blocks.between(ana["uuid"], bo["uuid"]) == (False, False) and blocks.blocked_by(ana["uuid"]) == []


def test_blocks_are_listed_most_recent_first_and_bounded_per_user(blocking):
    users, blocks = blocking
    ana = new_user(users, "ana")
    others = [new_user(users, "o") for _ in range(3)]
    for other in others:
        blocks.block(ana["uuid"], other["uuid"], most=2)
        time.sleep(0.002)
    listed = blocks.blocked_by(ana["uuid"])
    assert [b["handle"] for b in listed] == [others[1]["handle"], others[0]["handle"]]  # the third: over the bound
    assert listed[0]["blocked_at"] > listed[1]["blocked_at"]
    refused = blocks.block(ana["uuid"], others[2]["uuid"], most=2)
    assert refused["blocked_at"] is None and blocks.between(ana["uuid"], others[2]["uuid"]) == (False, False)
    assert blocks.block(ana["uuid"], others[0]["uuid"], most=2)["blocked_at"] == listed[1]["blocked_at"]


def test_blocking_nobody_is_none(blocking):
    users, blocks = blocking
    ana = new_user(users, "ana")
    assert blocks.block(ana["uuid"], str(uuid.uuid4())) is None
