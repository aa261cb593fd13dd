"""The four access patterns end to end through HTTP (a real gunicorn server over the local stack):
for andrewbrown, bayko and londo and for fresh users; pagination; idempotency, lost responses and
expired keys; the steady-state costs."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from domain import times
from lib import ddb as dynamo
from lib.conversations import layout
from lib.config import Settings

from tests.http_api import (User, Users, check, conforms, delta, error, get, groups, link_of, messages, post,
                            send)


# -- patterns A, B, C and D ------------------------------------------------------------------------

def test_londo_and_bayko_walk_patterns_c_b_d_and_a(api, seeded, harsh):
    londo, bayko = seeded["londo"], seeded["bayko"]
    had_group = any(g["handle"] == "bayko" for g in groups(api, londo))

    # C: londo starts a conversation with bayko by handle; the reply is the stored message.
    first = send(api, londo, "  Hello Bayko, it's Londo.  ", to=bayko)
    group = first["message_group_uuid"]
    assert group == layout.group_uuid_for(londo.uuid, bayko.uuid)
    assert (first["handle"], first["display_name"], first["message"]) == \
        ("londo", "Londo Mollari", "Hello Bayko, it's Londo.")

    # B: both see the conversation, naming the other participant (C wrote both group rows).
    for user, other in ((londo, bayko), (bayko, londo)):
        rows = [g for g in groups(api, user) if g["uuid"] == group]
        assert len(rows) == 1
        assert (rows[0]["handle"], rows[0]["display_name"]) == (other.handle, other.display_name)
        if not had_group:
            assert (rows[0]["message"], rows[0]["created_at"]) == (first["message"], first["created_at"])

    # D: replies by message_group_uuid, from both sides.
    reply = send(api, bayko, "Ambassador! Good to hear from you.", group=group)
    again = send(api, londo, "Likewise.", group=group.upper())  # any letter case
    assert (reply["handle"], reply["display_name"]) == ("bayko", "Andrew Bayko")
    assert "message_group_uuid" not in reply and "message_group_uuid" not in again
    assert len({first["uuid"], reply["uuid"], again["uuid"]}) == 3

    # A: both participants read the same messages, oldest first, with the contract's fields.
    expected = [{k: m[k] for k in ("uuid", "display_name", "handle", "message", "created_at", "edited_at")}
                for m in (first, reply, again)]
    for user in (londo, bayko):
        listed = messages(api, user, group)
        assert listed[-3:] == expected
        assert [m["created_at"] for m in listed] == sorted(m["created_at"] for m in listed)

    # A second C to the same handle, either way round, goes into the same conversation.
    assert send(api, londo, "One more thing.", to=bayko)["message_group_uuid"] == group
    assert send(api, bayko, "Yes?", to=londo)["message_group_uuid"] == group
    for user in (londo, bayko):
        assert [g["uuid"] for g in groups(api, user)].count(group) == 1
    assert [m["message"] for m in messages(api, londo, group)[-2:]] == ["One more thing.", "Yes?"]


def test_andrewbrown_reads_the_seeded_conversation_and_walks_c_and_d_with_londo(api, seeded, seeded_group):
    andrew, bayko, londo = seeded["andrewbrown"], seeded["bayko"], seeded["londo"]
    row = next(g for g in groups(api, andrew) if g["uuid"] == seeded_group)
    assert (row["handle"], row["display_name"]) == ("bayko", "Andrew Bayko")
    seeded_messages = messages(api, andrew, seeded_group)
    assert len(seeded_messages) >= 20
    assert {m["handle"] for m in seeded_messages} == {"andrewbrown", "bayko"}
    assert messages(api, bayko, seeded_group) == seeded_messages
    # The conversation's latest message is the one its group row shows (the seed wrote both).
    latest = get(api, f"/api/messages/{seeded_group}?limit=1", andrew).json()
    assert len(latest) == 1 and latest[0]["created_at"] >= row["created_at"]

    started = send(api, andrew, "Londo, a word?", to=londo)
    group = started["message_group_uuid"]
    assert group != seeded_group
    answer = send(api, londo, "Of course.", group=group)
    assert [m["uuid"] for m in messages(api, andrew, group)][-2:] == [started["uuid"], answer["uuid"]]
    assert any(g["uuid"] == group and g["handle"] == "andrewbrown" for g in groups(api, londo))


def test_users_short(api, seeded):
    response = get(api, "/api/users/@bayko/short")
    assert response.status_code == 200
    assert response.json() == {"uuid": seeded["bayko"].uuid, "handle": "bayko",
                               "display_name": "Andrew Bayko"}
    conforms(response.json(), "UserShort")
    for handle in ("nobody-here", "bad%20handle", "x" * 65):
        error(get(api, f"/api/users/@{handle}/short"), 404, "user_not_found")


def test_health_check(api):
    response = get(api, "/api/health-check")
    assert (response.status_code, response.json()) == (200, {"success": True})


def test_concurrent_first_messages_make_exactly_one_group(api, users: Users, settings: Settings, harsh):
    pairs = [(users.make("ca"), users.make("cb")) for _ in range(3)]
    barrier = threading.Barrier(len(pairs) * 2)
    results: dict[tuple[int, int], requests.Response] = {}

    def first_message(i: int, j: int, sender: User, recipient: User) -> None:
        barrier.wait(timeout=10)
        results[(i, j)] = requests.post(api.url + "/api/messages", headers=sender.auth, timeout=20,
                                        json={"message": f"hi from {sender.handle}",
                                              "handle": recipient.handle})

    threads = [threading.Thread(target=first_message, args=(i, j, *(p if j == 0 else p[::-1])))
               for i, p in enumerate(pairs) for j in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == len(threads)

    for i, (a, b) in enumerate(pairs):
        first, second = (check(results[(i, j)]) for j in (0, 1))
        assert first.status_code == second.status_code == 200, (first.text, second.text)
        group = first.json()["message_group_uuid"]
        assert second.json()["message_group_uuid"] == group
        assert sorted(m["uuid"] for m in messages(api, a, group)) == \
            sorted([first.json()["uuid"], second.json()["uuid"]])
        for user in (a, b):  # one row per participant, no more
            assert [g["uuid"] for g in groups(api, user)] == [group]

# -- pagination ----------------------------------------------------------------------------------

def follow(api, user: User, url: str) -> list[requests.Response]:
    pages = []
    while url:
        assert len(pages) <= 200
        response = get(api, url, user)
        assert response.status_code == 200, response.text
        pages.append(response)
        url = link_of(response)
    return pages


def test_pagination_through_130_messages_misses_and_repeats_nothing(api, pair, settings: Settings):
    a, b, group = pair
    first = messages(api, a, group)
    base = datetime.now(timezone.utc) - timedelta(days=1)
    written = [layout.message_item(group, {"uuid": s.uuid, "display_name": s.display_name,
                                           "handle": s.handle},
                                   f"message {i}", times.iso(base + timedelta(seconds=i)))
               for i, s in zip(range(130), [a, b] * 65)]
    dynamo.Ddb(settings).batch_write(written)
    expected = {m["message_uuid"] for m in written} | {m["uuid"] for m in first}
    assert len(expected) == 131

    for user, limit in ((a, 17), (b, 100), (a, 7), (b, 131 // 2)):
        pages = follow(api, user, f"/api/messages/{group}?limit={limit}")
        bodies = [p.json() for p in pages]
        assert len(pages) == -(-131 // limit)
        assert all(len(body) == limit for body in bodies[:-1]) and 1 <= len(bodies[-1]) <= limit
        seen = [m["uuid"] for body in bodies for m in body]
        assert len(seen) == len(set(seen)) == 131 and set(seen) == expected
        for body in bodies:
            conforms(body, "Message", array=True)
            stamps = [m["created_at"] for m in body]
            assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # oldest first
        for newer, older in zip(bodies, bodies[1:]):
            assert older[-1]["created_at"] < newer[0]["created_at"]  # each page goes further back
        for page in pages[:-1]:
            assert f"limit={limit}" in link_of(page)
        assert "Link" not in pages[-1].headers
    # The latest page is what a plain request shows.
    assert messages(api, a, group, limit=20) == follow(api, a, f"/api/messages/{group}")[0].json()


def test_group_pagination_ends_exactly_at_the_last_group(api, users: Users):
    owner = users.make("po")
    others = [users.make(f"p{i}") for i in range(3)]
    started = [send(api, owner, f"hello {o.handle}", to=o)["message_group_uuid"] for o in others]
    newest_first = list(reversed(started))
    whole = get(api, "/api/message_groups?limit=3", owner)
    assert [g["uuid"] for g in whole.json()] == newest_first and "Link" not in whole.headers
    for limit in (1, 2):
        pages = follow(api, owner, f"/api/message_groups?limit={limit}")
        assert [g["uuid"] for p in pages for g in p.json()] == newest_first
        assert len(pages) == -(-3 // limit)
    assert [g["handle"] for g in groups(api, owner)] == [o.handle for o in reversed(others)]

# -- idempotency -----------------------------------------------------------------------------

def test_idempotency_key_replays_the_first_result_and_stores_one_message(api, users: Users, harsh):
    a, b = users.make("ia"), users.make("ib")
    key = str(uuid.uuid4())
    first = send(api, a, "started once", to=b, key=key)
    group = first["message_group_uuid"]
    assert send(api, a, "started once", to=b, key=key) == first  # C replayed
    reply_key = f"reply-{uuid.uuid4()}"
    reply = send(api, a, "replied once", group=group, key=reply_key)
    assert send(api, a, "replied once", group=group, key=reply_key) == reply  # D replayed
    assert send(api, a, "  replied once ", group=group, key=reply_key) == reply  # same after trimming
    # The same key for a different request is refused, and stores nothing.
    for body in ({"message": "something else", "message_group_uuid": group},
                 {"message": "replied once", "handle": b.handle}):
        error(post(api, "/api/messages", a, json=body, headers={"Idempotency-Key": reply_key}),
              422, "idempotency_key_reused")
    # Keys belong to their caller: b's use of the same key is a new message.
    theirs = send(api, b, "replied once", group=group, key=reply_key)
    assert theirs["uuid"] != reply["uuid"]
    assert [m["uuid"] for m in messages(api, a, group)] == [first["uuid"], reply["uuid"], theirs["uuid"]]

    for bad in ("has space", "x" * 256, "tab\tkey", "é"):
        response = post(api, "/api/messages", a, json={"message": "no", "message_group_uuid": group},
                        headers={"Idempotency-Key": bad.encode("utf-8").decode("latin-1")})
        error(response, 400, "idempotency_key_invalid")
    assert len(messages(api, a, group)) == 3


def test_concurrent_retries_with_one_idempotency_key_store_one_message(api, users: Users, harsh):
    a, b = users.make("ic"), users.make("id")
    group = send(api, a, "first", to=b)["message_group_uuid"]
    key = f"concurrent-{uuid.uuid4()}"
    barrier = threading.Barrier(4)
    results = []

    def retry() -> None:
        barrier.wait(timeout=10)
        results.append(requests.post(api.url + "/api/messages", timeout=20,
                                     headers={**a.auth, "Idempotency-Key": key},
                                     json={"message": "once, concurrently", "message_group_uuid": group}))

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [check(r).status_code for r in results] == [200] * 4
    assert len({json.dumps(r.json(), sort_keys=True) for r in results}) == 1
    stored = messages(api, a, group)
    assert [m["message"] for m in stored] == ["first", "once, concurrently"]
    assert stored[-1]["uuid"] == results[0].json()["uuid"]

# -- AWS as it really is: lost responses (the harsh local stack) -----------------------------------

@pytest.mark.parametrize("with_key", [False, True], ids=["no-key", "idempotency-key"])
def test_a_write_whose_response_is_lost_is_stored_once(api, users: Users, harsh, with_key):
    """Every successful write's response is lost, so botocore retries each one and the retry finds
    its own write there: each message is still stored once and answered 200 (pattern C creating
    the conversation, then four concurrent pattern D posts)."""
    a, b = users.make("la"), users.make("lb")
    harsh(lost_responses=1.0, throttle=0, gsi_lag_ms=0, duplicate_records=0)
    key = (lambda: str(uuid.uuid4())) if with_key else (lambda: None)
    before = api.metrics()
    first = send(api, a, "first, response lost", to=b, key=key())
    group = first["message_group_uuid"]
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda i: send(api, [a, b][i % 2], f"reply {i}", group=group, key=key()),
                                range(4)))
    after = api.metrics()
    harsh(lost_responses=0)
    # botocore did retry: more requests were sent than calls were made
    spent = {k: after.get(k, 0) - before.get(k, 0) for k in ("dynamodb_requests", "dynamodb_calls")}
    assert spent["dynamodb_requests"] > spent["dynamodb_calls"], spent
    stored = messages(api, a, group)
    assert sorted(m["uuid"] for m in stored) == sorted([first["uuid"], *(r["uuid"] for r in replies)])
    assert sorted(m["message"] for m in stored) == sorted(
        ["first, response lost", *(f"reply {i}" for i in range(4))])

# -- idempotency records expire ---------------------------------------------------------------------

def test_an_idempotency_key_past_its_expiry_counts_as_unused(api, users: Users, settings: Settings):
    """DynamoDB's TTL deletes expired items up to days late: a record past its expires_at is
    treated as absent, so the key is free again (no replay, no 'reused'), and the table the app
    creates has TTL on expires_at."""
    a, b = users.make("ea"), users.make("eb")
    key = f"expiring-{uuid.uuid4()}"
    first = send(api, a, "first use", to=b, key=key)
    table = dynamo.Ddb(settings)
    record = table.get(layout.idempotency_key(a.uuid, key))
    table.put({**record, "expires_at": int(time.time()) - 60})  # as if a day had passed
    again = send(api, a, "a different message", group=first["message_group_uuid"], key=key)
    assert again["uuid"] != first["uuid"] and again["message"] == "a different message"
    assert table.get(layout.idempotency_key(a.uuid, key))["expires_at"] > time.time()
    ttl = table.client.describe_time_to_live(TableName=settings.ddb_table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")

# -- costs at steady state -----------------------------------------------------------------------

def test_steady_state_costs(api, seeded, seeded_group, pair):
    andrew = seeded["andrewbrown"]
    a, b, group = pair

    def cost(call) -> dict[str, int]:
        call()  # warm the caches (user, membership, JWKS)
        before = api.metrics()
        call()
        return delta(before, api.metrics())

    zero_pg = {"pg_queries": 0, "jwks_fetches": 0}
    assert cost(lambda: messages(api, andrew, seeded_group, limit=20)) == {"dynamodb_calls": 1, **zero_pg}
    assert cost(lambda: groups(api, andrew)) == {"dynamodb_calls": 1, **zero_pg}
    assert cost(lambda: send(api, b, "reply", group=group)) == {"dynamodb_calls": 1, **zero_pg}
    c = cost(lambda: send(api, a, "again", to=b))
    assert (c["dynamodb_calls"], c["jwks_fetches"]) == (1, 0)
    assert c["pg_queries"] <= 1  # the handle's user
    # Following a page link costs the same as the first page.
    url = link_of(get(api, f"/api/messages/{seeded_group}?limit=3", andrew))
    assert cost(lambda: get(api, url, andrew)) == {"dynamodb_calls": 1, **zero_pg}
