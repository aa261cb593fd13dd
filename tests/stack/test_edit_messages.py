"""Editing a message end to end through HTTP against gunicorn over the local stack: the sender's
correction in pattern A for both participants, the contract's refusals, an edit past its window,
and edits in harsh mode (lost responses retried by the SDK, throttling)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from domain import message_ids, times
from lib.conversations import layout
from lib.ddb import Ddb
from tests.http_api import conforms, error, messages, request, send


def patch(api, user, group, message, text):
    return request(api, "PATCH", f"/api/messages/{group}/{message}", user, json={"message": text})


def test_the_sender_corrects_a_message_and_both_read_it_edited(api, pair):
    a, b, group = pair
    sent = send(api, a, "see you friday", group=group)
    assert sent["edited_at"] is None
    edited = patch(api, a, group, sent["uuid"].upper(), "see you saturday")
    assert edited.status_code == 200
    conforms(edited.json(), "Message")
    assert edited.json()["message"] == "see you saturday" and edited.json()["edited_at"] > sent["created_at"]
    for reader in (a, b):
        last = messages(api, reader, group)[-1]
        assert (last["uuid"], last["message"], last["edited_at"]) == (sent["uuid"], "see you saturday",
                                                                       edited.json()["edited_at"])
    assert patch(api, a, group, sent["uuid"], "see you saturday").json() == edited.json()


def test_refusals_as_the_contract_gives_them(api, pair, users):
    a, b, group = pair
    sent = send(api, a, "mine", group=group)
    error(patch(api, b, group, sent["uuid"], "theirs"), 403, "not_sender")
    stranger = users.make("st")
    error(patch(api, stranger, group, sent["uuid"], "nope"), 404, "message_not_found")
    error(patch(api, a, group, message_ids.new(times.now_iso()), "nope"), 404, "message_not_found")
    error(patch(api, a, group, "not-a-uuid", "nope"), 404, "message_not_found")
    error(patch(api, a, group, sent["uuid"], " "), 422, "message_blank")
    assert request(api, "PATCH", f"/api/messages/{group}/{sent['uuid']}", json={"message": "x"}).status_code == 401
    assert [m["message"] for m in messages(api, a, group)][-1] == "mine"


def test_an_edit_past_a_day_is_refused(api, pair, settings):
    a, _, group = pair
    old = times.iso(datetime.now(timezone.utc) - timedelta(hours=25))
    item = layout.message_item(group, {"uuid": a.uuid, "display_name": a.display_name, "handle": a.handle},
                               "yesterday's", old)
    Ddb(settings).put(item)
    error(patch(api, a, group, item["message_uuid"], "too late"), 409, "edit_window_closed")


def test_edits_in_harsh_mode_land_once_and_the_last_stays(api, pair, harsh):
    harsh(lost_responses=0.3)
    a, b, group = pair
    sent = send(api, a, "first", group=group)
    for text in ("second", "third", "fourth"):
        assert patch(api, a, group, sent["uuid"], text).status_code == 200
    harsh(lost_responses=0)
    assert [m["message"] for m in messages(api, b, group) if m["uuid"] == sent["uuid"]] == ["fourth"]


def test_the_rows_of_an_edited_last_message_show_the_new_text_through_the_stream(app_with_stream, harsh):
    """The table's stream, as the template's mapping filters it, through the stream Lambda's own
    handler (the local worker): the edit's MODIFY record reaches both rows, records delivered
    twice and lost responses included, and an older edit never comes back."""
    harsh(duplicate_records=0.5, lost_responses=0, throttle=0)
    client, auth = app_with_stream.client, app_with_stream.auth
    sent = client.post("/api/messages", headers=auth["bayko"], json={"handle": "londo", "message": "frist"}).json
    group = sent["message_group_uuid"]
    app_with_stream.drain()
    for text in ("firts", "first"):
        assert client.patch(f"/api/messages/{group}/{sent['uuid']}", headers=auth["bayko"],
                            json={"message": text}).status_code == 200
        app_with_stream.drain()
    for handle in ("bayko", "londo"):
        [row] = [g for g in client.get("/api/message_groups", headers=auth[handle]).json if g["uuid"] == group]
        assert row["message"] == "first", handle
