"""Deleting a message end to end through HTTP against gunicorn over the local stack: the answer and
its repeat, the contract's refusals, pattern A's pages and cursors, a retried send answering 410,
harsh mode; and through the table's stream and the stream Lambda's own handler, the rows falling
back and the unread count. The store's ordering rules: tests/fast/test_delete_services.py; live
events: tests/stack/test_live_events.py."""
from __future__ import annotations

from domain import message_ids, times
from lib.conversations import layout
from lib.ddb import Ddb
from tests.http_api import conforms, error, get, messages, post, request, send


def delete(api, user, group, message):
    return request(api, "DELETE", f"/api/messages/{group}/{message}", user)


def test_the_sender_deletes_a_message_and_it_leaves_the_conversation(api, pair, settings):
    a, b, group = pair
    sent = send(api, a, "not for you", group=group)
    answer = delete(api, a, group, sent["uuid"].upper())
    assert answer.status_code == 200, answer.text
    conforms(answer.json(), "MessageDeleted")
    assert answer.json()["uuid"] == sent["uuid"] and answer.json()["message_group_uuid"] == group
    assert delete(api, a, group, sent["uuid"]).json() == answer.json(), "deleting again answers the same"
    for reader in (a, b):
        assert [m["message"] for m in messages(api, reader, group)] == ["first"]
    item = Ddb(settings).get(layout.message_key(group, sent["created_at"]))
    assert item["message"] == "" and item[layout.DELETED] == answer.json()["deleted_at"]


def test_refusals_as_the_contract_gives_them(api, pair, users):
    a, b, group = pair
    sent = send(api, a, "mine", group=group)
    error(delete(api, b, group, sent["uuid"]), 403, "not_sender")
    stranger = users.make("sd")
    error(delete(api, stranger, group, sent["uuid"]), 404, "message_not_found")
    error(delete(api, a, group, message_ids.new(times.now_iso())), 404, "message_not_found")
    error(delete(api, a, group, "not-a-uuid"), 404, "message_not_found")
    assert request(api, "DELETE", f"/api/messages/{group}/{sent['uuid']}").status_code == 401
    assert delete(api, a, group, sent["uuid"]).status_code == 200
    patched = request(api, "PATCH", f"/api/messages/{group}/{sent['uuid']}", a, json={"message": "back"})
    error(patched, 404, "message_not_found")
    error(delete(api, b, group, sent["uuid"]), 404, "message_not_found")
    for method in ("PATCH", "DELETE"):  # the read-marker route's path is no message's
        assert request(api, method, f"/api/messages/{group}/read", a, json={"message": "x"}).status_code == 405


def test_a_stranger_and_a_missing_message_cost_the_same(api, pair, users):
    a, _, group = pair
    sent = send(api, a, "mine", group=group)
    stranger = users.make("sc")

    def cost(target):
        before = api.metrics()
        error(delete(api, stranger, group, target), 404, "message_not_found")
        after = api.metrics()
        return after["dynamodb_calls"] - before["dynamodb_calls"]

    cost(sent["uuid"])  # the header is cached after the first
    assert cost(sent["uuid"]) == cost(message_ids.new(times.now_iso()))


def test_pages_keep_their_size_and_cursors_made_before_stay_valid(api, pair):
    a, b, group = pair
    sent = [send(api, a, f"m{i}", group=group) for i in range(1, 9)]
    first = get(api, f"/api/messages/{group}?limit=3", b)
    assert [m["message"] for m in first.json()] == ["m6", "m7", "m8"]
    next_page = first.links["next"]["url"]  # made before the deletions
    for gone in (sent[4], sent[3], sent[1]):  # m5, m4, m2: all on the next page
        assert delete(api, a, group, gone["uuid"]).status_code == 200
    second = get(api, next_page, b)
    assert second.status_code == 200 and [m["message"] for m in second.json()] == ["first", "m1", "m3"]


def test_a_retried_send_of_a_deleted_message_answers_410_and_stores_nothing(api, pair, settings):
    a, b, group = pair
    sent = send(api, a, "a secret", group=group, key="delete-retry-1")
    assert delete(api, a, group, sent["uuid"]).status_code == 200
    held = Ddb(settings).get(layout.idempotency_key(a.uuid, "delete-retry-1"))
    assert "fingerprint" not in held
    retried = post(api, "/api/messages", a, json={"message": "a secret", "message_group_uuid": group},
                   headers={"Idempotency-Key": "delete-retry-1"})
    error(retried, 410, "message_deleted")
    assert [m["message"] for m in messages(api, b, group)] == ["first"]


def test_deletions_in_harsh_mode_land_once(api, pair, harsh):
    harsh(lost_responses=0.3, gsi_lag_ms=500)
    a, b, group = pair
    sent = [send(api, a, f"h{i}", group=group) for i in range(4)]
    answers = [delete(api, a, group, m["uuid"]) for m in sent[1:3]]
    assert [r.status_code for r in answers] == [200, 200]
    assert [delete(api, a, group, m["uuid"]).json() for m in sent[1:3]] == [r.json() for r in answers]
    harsh(lost_responses=0, gsi_lag_ms=0)
    assert [m["message"] for m in messages(api, b, group)] == ["first", "h0", "h3"]


def test_the_rows_fall_back_and_stop_counting_through_the_stream(app_with_stream, harsh):
    """The table's stream, as the template's mapping filters it, through the stream Lambda's own
    handler (the local worker), records delivered twice and write responses lost: the rows show
    the last message left, the recipient's count drops, and with every message deleted the rows
    show ""."""
    harsh(duplicate_records=0.5, lost_responses=0.5, throttle=0)
    client, auth = app_with_stream.client, app_with_stream.auth
    first = client.post("/api/messages", headers=auth["bayko"], json={"handle": "londo", "message": "hi"}).json
    group = first["message_group_uuid"]
    second = client.post("/api/messages", headers=auth["bayko"],
                         json={"message_group_uuid": group, "message": "oops"}).json
    app_with_stream.drain()

    def row(handle):
        [found] = [g for g in client.get("/api/message_groups", headers=auth[handle]).json if g["uuid"] == group]
        return found["message"], found["unread_count"]

    assert row("londo") == ("oops", 2)
    assert client.delete(f"/api/messages/{group}/{second['uuid']}", headers=auth["bayko"]).status_code == 200
    app_with_stream.drain()
    assert row("londo") == ("hi", 1) and row("bayko") == ("hi", 0)
    assert client.delete(f"/api/messages/{group}/{first['uuid']}", headers=auth["bayko"]).status_code == 200
    app_with_stream.drain()
    assert row("londo") == ("", 0) and row("bayko") == ("", 0)
