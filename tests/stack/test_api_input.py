"""Bad input through HTTP, each with its code and nothing stored; the access log; the caller's
user cache."""
from __future__ import annotations

import json
import logging
import uuid

import pytest
import requests

from lib.conversations import layout
from lib.config import Settings

from tests.http_api import Users, error, get, messages, post, request, send


# -- bad input -------------------------------------------------------------------------------

def test_each_bad_body_is_refused_with_its_code(api, pair, seeded):
    a, b, group = pair
    before = messages(api, a, group)
    json_headers = {"Content-Type": "application/json"}
    raw = [
        (b"not json", json_headers, 400, "body_invalid"),
        (b'{"message": "unterminated', json_headers, 400, "body_invalid"),
        (b"", json_headers, 400, "body_invalid"),
        (b"\xff\xfe", json_headers, 400, "body_invalid"),
        (b'[{"message": "hi", "handle": "x"}]', json_headers, 400, "body_invalid"),
        (b'"hi"', json_headers, 400, "body_invalid"),
        (b"42", json_headers, 400, "body_invalid"),
        (b"null", json_headers, 400, "body_invalid"),
        (b"[" * 5000 + b"]" * 5000, json_headers, 400, "body_invalid"),
        (b'{"message": "hi", "handle": ' + b"[" * 5000 + b"]" * 5000 + b"}", json_headers,
         400, "body_invalid"),
        (json.dumps({"message": "hi", "message_group_uuid": group}).encode(),
         {"Content-Type": "text/plain"}, 400, "body_invalid"),
        (json.dumps({"message": "hi", "message_group_uuid": group}).encode(), {}, 400, "body_invalid"),
        (b'{"message": "\\ud800", "message_group_uuid": "' + group.encode() + b'"}', json_headers,
         422, "message_invalid"),
    ]
    for data, headers, status, code in raw:
        error(post(api, "/api/messages", a, data=data, headers=headers), status, code)

    bodies = [
        ({"message_group_uuid": group}, 422, "message_invalid"),
        ({"message": None, "message_group_uuid": group}, 422, "message_invalid"),
        ({"message": 42, "message_group_uuid": group}, 422, "message_invalid"),
        ({"message": ["hi"], "message_group_uuid": group}, 422, "message_invalid"),
        ({"message": "", "message_group_uuid": group}, 422, "message_blank"),
        ({"message": " \t\n\r ", "message_group_uuid": group}, 422, "message_blank"),
        ({"message": "x" * 1025, "message_group_uuid": group}, 422, "message_too_long"),
        ({"message": " " + "x" * 1025 + " ", "message_group_uuid": group}, 422, "message_too_long"),
        ({"message": "nul\x00", "message_group_uuid": group}, 422, "message_invalid"),
        ({"message": "both", "message_group_uuid": group, "handle": b.handle}, 422, "recipient_invalid"),
        ({"message": "neither"}, 422, "recipient_invalid"),
        ({"message": "nulls", "message_group_uuid": None, "handle": None}, 422, "recipient_invalid"),
        ({"message": "bad uuid", "message_group_uuid": "not-a-uuid"}, 422, "message_group_uuid_invalid"),
        ({"message": "bad uuid", "message_group_uuid": group.replace("-", "")}, 422,
         "message_group_uuid_invalid"),
        ({"message": "bad uuid", "message_group_uuid": 42}, 422, "message_group_uuid_invalid"),
        ({"message": "bad handle", "handle": "no spaces"}, 422, "handle_invalid"),
        ({"message": "bad handle", "handle": ""}, 422, "handle_invalid"),
        ({"message": "bad handle", "handle": ["bayko"]}, 422, "handle_invalid"),
        ({"message": "unknown", "handle": f"nobody{uuid.uuid4().hex[:8]}"}, 404, "user_not_found"),
        ({"message": "self", "handle": a.handle}, 422, "cannot_message_self"),
        ({"message": "unknown group", "message_group_uuid": str(uuid.uuid4())}, 404,
         "message_group_not_found"),
    ]
    for body, status, code in bodies:
        error(post(api, "/api/messages", a, json=body), status, code)
    assert messages(api, a, group) == before

    # The limits themselves are fine; the text is stored trimmed; extra fields are ignored.
    exactly = send(api, a, "y" * 1024, group=group)
    padded = post(api, "/api/messages", a, json={"message": "\n " + "z" * 1024 + " \t",
                                                 "message_group_uuid": group, "extra": [1, 2]})
    assert padded.status_code == 200 and padded.json()["message"] == "z" * 1024
    one = send(api, a, "!", group=group)
    assert [m["uuid"] for m in messages(api, a, group)][-3:] == \
        [exactly["uuid"], padded.json()["uuid"], one["uuid"]]


def test_bad_limits_and_unknown_routes(api, seeded, seeded_group):
    andrew = seeded["andrewbrown"]
    for limit in ("0", "101", "abc", "-1", "", "1.5", "²", " 5", "1e2", "99999999999999999999"):
        quoted = requests.utils.quote(limit)
        error(get(api, f"/api/message_groups?limit={quoted}", andrew), 400, "limit_invalid")
        error(get(api, f"/api/messages/{seeded_group}?limit={quoted}", andrew), 400, "limit_invalid")
    for limit in ("1", "100", "007"):
        assert get(api, f"/api/message_groups?limit={limit}", andrew).status_code == 200
    assert len(messages(api, andrew, seeded_group, limit=100)) <= 100
    error(get(api, "/api/nothing-here", andrew), 404, "not_found")
    error(get(api, "/api/messages", andrew), 405, "method_not_allowed")
    refused = request(api, "DELETE", f"/api/messages/{seeded_group}", andrew)
    error(refused, 405, "method_not_allowed")
    assert set(refused.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}


def test_bodies_over_64_kib_are_413(api, pair):
    a, _, group = pair
    big = json.dumps({"message": "x" * (65 * 1024), "message_group_uuid": group}).encode()

    def chunks():
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    # gunicorn closes a connection whose unread body is too big to drain: one connection each.
    for data, headers in ((big, {"Content-Type": "application/json"}),
                          (big, {"Content-Type": "text/plain"}),
                          (chunks(), {"Content-Type": "application/json"})):
        with requests.Session() as session:
            response = post(api, "/api/messages", a, data=data, session=session,
                            headers={**headers, "Connection": "close"})
        error(response, 413, "request_entity_too_large")
    # Just under the limit, a body is read (and this one refused for its message's length).
    near = json.dumps({"message": "x" * (60 * 1024), "message_group_uuid": group}).encode()
    error(post(api, "/api/messages", a, data=near, headers={"Content-Type": "application/json"}),
          422, "message_too_long")

# -- the access log ------------------------------------------------------------------------------

def test_one_json_access_log_line_per_request_without_tokens_or_text(settings: Settings, seeded,
                                                                     caplog):
    from app import create_app

    londo = seeded["londo"]
    group = layout.group_uuid_for(londo.uuid, seeded["bayko"].uuid)
    secret_text = f"secret message {uuid.uuid4()}"
    app = create_app(settings)
    try:
        client = app.test_client()
        with caplog.at_level(logging.INFO, logger="cruddur.access"):
            calls = [
                (client.get("/api/message_groups", headers=londo.auth),
                 "GET", "/api/message_groups", 200, londo.uuid),
                (client.post("/api/messages", headers=londo.auth,
                             json={"message": secret_text, "handle": "bayko"}),
                 "POST", "/api/messages", 200, londo.uuid),
                (client.get(f"/api/messages/{group}?limit=1", headers=londo.auth),
                 "GET", "/api/messages/<message_group_uuid>", 200, londo.uuid),
                (client.post("/api/messages", headers={"Authorization": f"Bearer {londo.token}x"},
                             json={"message": secret_text, "handle": "bayko"}),
                 "POST", "/api/messages", 401, None),
                (client.get("/api/nowhere"), "GET", None, 404, None),
                (client.get("/api/health-check"), "GET", "/api/health-check", 200, None),
            ]
    finally:
        app.extensions["parts"].db.close()
    lines = [r for r in caplog.records if r.name == "cruddur.access"]
    assert len(lines) == len(calls)
    for record, (response, method, route, status, caller) in zip(lines, calls):
        assert response.status_code == status
        entry = json.loads(record.getMessage())
        assert set(entry) == {"trace_id", "method", "route", "path", "status", "duration_ms", "caller"}
        assert (entry["method"], entry["route"], entry["status"], entry["caller"]) == \
            (method, route, status, caller)
        assert entry["path"] == response.request.path  # named even where no route matched
        assert isinstance(entry["duration_ms"], (int, float)) and entry["duration_ms"] >= 0
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert londo.token not in everything and londo.token[-20:] not in everything
    assert secret_text not in everything

# -- the caller's user, cached for USER_CACHE_SECONDS ----------------------------------------------

@pytest.mark.parametrize("cache_seconds, sees_rename", [(0.0, True), (3600.0, False)])
def test_the_callers_user_is_cached_for_user_cache_seconds(settings: Settings, users: Users,
                                                           cache_seconds, sees_rename):
    """USER_CACHE_SECONDS bounds how long a renamed user still shows under the old name: with 0
    the next request reads PostgreSQL again; with an hour it does not."""
    from services.bootstrap import Parts
    from services.current_user import CurrentUser

    person = users.make("ttl")
    parts = Parts.from_settings(settings.with_(user_cache_seconds=cache_seconds))
    who = (parts.tokens, parts.users, parts.known_users)
    try:
        auth = f"Bearer {person.token}"
        assert CurrentUser.run(*who, auth)["display_name"] == person.display_name
        with users.lock:
            users.pg.execute("UPDATE public.users SET display_name = %s WHERE uuid = %s",
                             ["Renamed", person.uuid])
        expected = "Renamed" if sees_rename else person.display_name
        assert CurrentUser.run(*who, auth)["display_name"] == expected
    finally:
        parts.db.close()
