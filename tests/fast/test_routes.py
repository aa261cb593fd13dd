"""The HTTP side (app.py, routes/) over the in-memory parts, through Flask's test client: each
route hands its service the request's parts and shapes the answer as the contract says (bare
arrays, a Link to the next page, errors as arrays of codes with their status and headers). The
same against a real gunicorn over the local stack: tests/stack/test_api_*.py."""
from __future__ import annotations

import pytest

from app import create_app
from lib.config import Settings

ORIGIN = "http://localhost:3000"


class FakeDb:
    """What the health check asks of PostgreSQL."""

    def __init__(self) -> None:
        self.up = True

    def ping(self) -> bool:
        return self.up

    def close(self) -> None:
        pass


@pytest.fixture
def client(world):
    world.parts.db = FakeDb()
    settings = Settings(cursor_secret="fast", db_pool_min=0, cognito_user_pool_id="p", cognito_client_id="c",
                        frontend_url=ORIGIN)
    app = create_app(settings, world.parts)
    return app.test_client()


@pytest.fixture
def ana(world):
    world.person("ana", "Ana A")
    return {"Authorization": f"Bearer {world.parts.tokens.issue('sub-ana')}"}


@pytest.fixture
def bo(world):
    world.person("bo", "Bo B")
    return {"Authorization": f"Bearer {world.parts.tokens.issue('sub-bo')}"}


def codes(response) -> list[str]:
    assert response.is_json and isinstance(response.json, list), response.data[:200]
    return response.json


def test_a_message_by_handle_is_answered_with_its_conversation(client, ana, bo):
    response = client.post("/api/messages", json={"handle": "bo", "message": "hi bo"}, headers=ana)
    assert response.status_code == 200
    assert response.json["message"] == "hi bo" and response.json["message_group_uuid"]
    [conversation] = client.get("/api/message_groups", headers=bo).json
    assert (conversation["handle"], conversation["unread_count"]) == ("ana", 1)


def test_a_page_with_more_after_it_links_to_the_next_with_the_same_query(client, world, ana, bo):
    group = client.post("/api/messages", json={"handle": "bo", "message": "m0"}, headers=ana).json["message_group_uuid"]
    for i in range(1, 4):
        client.post("/api/messages", json={"message_group_uuid": group, "message": f"m{i}"}, headers=bo)
    first = client.get(f"/api/messages/{group}?limit=2", headers=ana)
    assert [m["message"] for m in first.json] == ["m2", "m3"]
    link = first.headers["Link"]
    assert link.startswith(f"</api/messages/{group}?limit=2&cursor=") and link.endswith('>; rel="next"')
    second = client.get(link[1:link.index(">")], headers=ana)
    assert [m["message"] for m in second.json] == ["m0", "m1"] and "Link" not in second.headers


@pytest.mark.parametrize("headers, code", [({}, "token_missing"), ({"Authorization": "Basic x"}, "token_malformed"),
                                           ({"Authorization": "Bearer nope"}, "token_invalid")])
def test_no_good_token_is_401_with_a_bearer_challenge(client, headers, code):
    response = client.get("/api/message_groups", headers=headers)
    assert response.status_code == 401 and codes(response) == [code]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_identity_without_a_user_is_403(client, world):
    response = client.get("/api/message_groups",
                          headers={"Authorization": f"Bearer {world.parts.tokens.issue('sub-stranger')}"})
    assert response.status_code == 403 and codes(response) == ["user_unknown"]


@pytest.mark.parametrize("body, content_type, status, code", [
    (b"{not json", "application/json", 400, "body_invalid"),
    (b'{"handle": "bo", "message": "hi"}', "text/plain", 400, "body_invalid"),
    (b'{"handle": "nobody", "message": "hi"}', "application/json", 404, "user_not_found"),
    (b'{"handle": "bo", "message": ""}', "application/json", 422, "message_blank"),
    (b'{"handle": "bo", "message": "\\ud800"}', "application/json", 422, "message_invalid"),
    (b"[" * 100_000, "application/json", 413, "request_entity_too_large"),
])
def test_a_bad_post_is_its_status_and_code_with_a_readable_detail(client, ana, bo, body, content_type, status, code):
    response = client.post("/api/messages", data=body, headers={**ana, "Content-Type": content_type})
    assert response.status_code == status and codes(response) == [code]
    assert status == 413 or response.headers["X-Error-Detail"]


def test_a_stranger_reading_a_conversation_is_404_like_one_that_does_not_exist(client, world, ana, bo):
    group = client.post("/api/messages", json={"handle": "bo", "message": "hi"}, headers=ana).json["message_group_uuid"]
    world.person("eve")
    eve = {"Authorization": f"Bearer {world.parts.tokens.issue('sub-eve')}"}
    theirs = client.get(f"/api/messages/{group}", headers=eve)
    nowhere = client.get("/api/messages/6f1c3c55-0000-4000-8000-00000000dead", headers=eve)
    assert (theirs.status_code, theirs.json, theirs.headers.get("X-Error-Detail")) == (
        nowhere.status_code, nowhere.json, nowhere.headers.get("X-Error-Detail")) == (404, ["message_group_not_found"],
                                                                                        "no such conversation")


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=101", "cursor=forged"])
def test_a_bad_query_parameter_is_400(client, ana, query):
    response = client.get(f"/api/message_groups?{query}", headers=ana)
    assert response.status_code == 400 and codes(response)[0] in ("limit_invalid", "cursor_invalid")


def test_an_unknown_route_and_a_wrong_method_answer_as_json(client, ana):
    missing = client.get("/api/nothing-here", headers=ana)
    assert missing.status_code == 404 and codes(missing) == ["not_found"]
    wrong = client.delete("/api/messages", headers=ana)
    assert wrong.status_code == 405 and codes(wrong) == ["method_not_allowed"] and "POST" in wrong.headers["Allow"]


def test_the_frontends_origin_is_let_through_and_a_preflight_needs_no_token(client):
    preflight = client.options("/api/messages", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
    assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    foreign = client.get("/api/health-check", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in foreign.headers and foreign.headers["Vary"] == "Origin"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_a_preflight_allows_every_method_the_contract_uses_from_the_frontends_origin(client, method):
    preflight = client.options("/api/profile/update", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert method in {m.strip() for m in preflight.headers["Access-Control-Allow-Methods"].split(",")}


def test_health_asks_postgresql_and_readiness_both_stores(client, world):
    assert client.get("/api/health-check").json == {"success": True}
    assert client.get("/api/ready").json == {"ready": True, "checks": {"postgres": True, "dynamodb": True}}
    world.parts.db.up = False
    world.parts.readiness.clear()
    assert client.get("/api/health-check").status_code == 503
    down = client.get("/api/ready")
    assert down.status_code == 503 and codes(down) == ["not_ready"] and down.headers["Retry-After"] == "5"


def test_a_crud_posted_by_the_caller_shows_on_home_and_their_page(client, ana):
    made = client.post("/api/activities", json={"message": "hello cruddur", "ttl": "7-days"}, headers=ana)
    assert made.status_code == 200 and made.json["handle"] == "ana"
    assert [a["message"] for a in client.get("/api/activities/home").json] == ["hello cruddur"]
    assert [a["uuid"] for a in client.get("/api/activities/@ana").json] == [made.json["uuid"]]
    assert client.get(f"/api/activities/{made.json['uuid']}").json["message"] == "hello cruddur"
    assert codes(client.get("/api/activities/@nobody")) == ["user_not_found"]


def test_a_cruds_page_is_public_and_names_its_handle(client, ana):
    made = client.post("/api/activities", json={"message": "see my page", "ttl": "1-day"}, headers=ana).json
    page = client.get(f"/api/activities/@ana/status/{made['uuid']}")
    assert page.status_code == 200 and set(page.json) == {"activity", "replies"}
    assert page.json["activity"]["message"] == "see my page" and page.json["replies"] == []
    assert codes(client.get(f"/api/activities/@bo/status/{made['uuid']}")) == ["activity_not_found"]


def test_a_users_card_is_public(client, bo):
    assert client.get("/api/users/@bo/short").json == {"uuid": client.get("/api/users/@BO/short").json["uuid"],
                                                       "handle": "bo", "display_name": "Bo B"}


def test_a_ticket_is_bought_with_a_token_and_a_stream_opened_with_the_ticket(client, ana):
    bought = client.post("/api/events/ticket", headers=ana)
    assert bought.status_code == 200 and bought.json["expires_in"] > 0
    refused = client.get("/api/events?ticket=not-a-ticket")
    assert refused.status_code == 401 and codes(refused) == ["ticket_invalid"]
    assert client.post("/api/events/ticket").status_code == 401


@pytest.mark.parametrize("kind, status", [
    ("MalformedRequest", 400), ("Unauthenticated", 401), ("NotPermitted", 403), ("NotFound", 404),
    ("Conflict", 409), ("InvalidInput", 422), ("Busy", 429), ("Unavailable", 503), ("CruddurError", 500),
])
def test_each_kind_of_error_has_its_status(kind, status):
    from app import status_of
    from domain import errors

    assert status_of(getattr(errors, kind)("some_code")) == status


def test_a_busy_answer_says_when_to_try_again(client, world, ana):
    for _ in range(world.parts.settings.events_tickets_per_user):
        assert client.post("/api/events/ticket", headers=ana).status_code == 200
    busy = client.post("/api/events/ticket", headers=ana)
    assert busy.status_code == 429 and codes(busy) == ["too_many_tickets"] and int(busy.headers["Retry-After"]) > 0


def test_a_link_names_the_public_url_never_the_hosts_a_client_sends(world, ana, bo):
    world.parts.db = FakeDb()
    settings = Settings(cursor_secret="fast", db_pool_min=0, cognito_user_pool_id="p", cognito_client_id="c",
                        public_url="https://api.example.test")
    client = create_app(settings, world.parts).test_client()
    for n in range(3):
        world.parts.users.add(f"p{n}", cognito_user_id=f"sub-p{n}")
        token = world.parts.tokens.issue(f"sub-p{n}")
        client.post("/api/messages", json={"handle": "ana", "message": "hi"}, headers={"Authorization": f"Bearer {token}"})
    page = client.get("/api/message_groups?limit=1", headers={**ana, "Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert page.headers["Link"].startswith("<https://api.example.test/api/message_groups?limit=1&cursor=")


def test_a_retried_post_with_its_idempotency_key_is_the_same_answer(client, ana, bo):
    body = {"handle": "bo", "message": "only once"}
    first = client.post("/api/messages", json=body, headers={**ana, "Idempotency-Key": "retry-1"})
    again = client.post("/api/messages", json=body, headers={**ana, "Idempotency-Key": "retry-1"})
    assert first.json == again.json
    bad = client.post("/api/messages", json=body, headers={**ana, "Idempotency-Key": "has space"})
    assert bad.status_code == 400 and codes(bad) == ["idempotency_key_invalid"]


def test_marking_read_takes_no_body_or_a_marker(client, world, ana, bo):
    group = client.post("/api/messages", json={"handle": "bo", "message": "hi"}, headers=ana).json["message_group_uuid"]
    assert client.post(f"/api/messages/{group}/read", headers=bo).json == {"unread_count": 0}
    assert client.get("/api/message_groups/unread", headers=bo).json == {"conversations": 0, "messages": 0}
    bad = client.post(f"/api/messages/{group}/read", json={"up_to": "soon"}, headers=bo)
    assert bad.status_code == 422 and codes(bad) == ["up_to_invalid"]


def test_one_access_line_per_request_names_the_route_and_caller_never_the_token_or_text(client, ana, caplog):
    with caplog.at_level("INFO", logger="cruddur.access"):
        client.post("/api/messages", json={"handle": "bo", "message": "a secret text"}, headers=ana)
    lines = [r.getMessage() for r in caplog.records if r.name == "cruddur.access"]
    assert len(lines) == 1 and '"route": "/api/messages"' in lines[0] and '"status": 404' in lines[0]
    assert "secret text" not in lines[0] and ana["Authorization"].split()[1] not in lines[0]


def test_a_deployment_for_the_final_frontend_answers_a_users_page_with_the_profile(world, ana):
    world.parts.db = FakeDb()
    final = Settings(cursor_secret="fast", db_pool_min=0, cognito_user_pool_id="p", cognito_client_id="c",
                     frontend_url=ORIGIN, frontend="final")
    final_client = create_app(final, world.parts).test_client()
    week5_client = create_app(Settings(cursor_secret="fast", db_pool_min=0, cognito_user_pool_id="p",
                                       cognito_client_id="c", frontend_url=ORIGIN), world.parts).test_client()
    made = final_client.post("/api/activities", json={"message": "on my page", "ttl": "1-day"}, headers=ana).json
    # the final frontend's call: no token, its JSON Content-Type on a GET, its origin
    headers = {"Content-Type": "application/json", "Origin": ORIGIN}
    page = final_client.get("/api/activities/@ana", headers=headers)
    assert set(page.json) == {"profile", "activities"} and page.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert page.json["profile"]["display_name"] == "Ana A" and page.json["profile"]["cruds_count"] == 1
    assert [a["uuid"] for a in page.json["activities"]] == [made["uuid"]]
    assert [a["uuid"] for a in week5_client.get("/api/activities/@ana").json] == [made["uuid"]], "week-5: the array"
    assert codes(final_client.get("/api/activities/@nobody")) == ["user_not_found"]


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_the_caller_updates_their_own_profile_and_their_conversations_show_it(client, ana, bo, method):
    group = client.post("/api/messages", json={"handle": "bo", "message": "hi"}, headers=ana).json["message_group_uuid"]
    answer = client.open("/api/profile/update", method=method, json={"display_name": "Ana New", "bio": "hi there"},
                         headers=ana)
    assert answer.status_code == 200 and answer.json["display_name"] == "Ana New" and answer.json["bio"] == "hi there"
    assert client.get("/api/message_groups", headers=bo).json[0]["display_name"] == "Ana New"
    assert client.get(f"/api/messages/{group}", headers=bo).json[0]["display_name"] == "Ana New"
    too_long = client.put("/api/profile/update", json={"bio": "x" * 161}, headers=ana)
    assert too_long.status_code == 422 and codes(too_long) == ["bio_too_long"]
    assert client.put("/api/profile/update", json={"bio": "x"}).status_code == 401


def test_cors_headers_added_directly_are_flask_cors_own_byte_for_byte(world, ana):
    """app.py answers a simple request from the frontend or without an Origin with the headers
    flask-cors gave such a request at start; every other request goes through flask-cors. Against
    the same app with flask-cors's hook put back, every header of every kind of request is the
    same, in the same order: with and without Origin, another origin, preflights (of known routes
    and unknown ones), errors, a private-network request."""
    world.parts.db = FakeDb()
    settings = Settings(cursor_secret="fast", db_pool_min=0, cognito_user_pool_id="p", cognito_client_id="c",
                        frontend_url=ORIGIN)
    direct = create_app(settings, world.parts)
    reference = create_app(settings, world.parts)
    hooks = reference.after_request_funcs[None]
    [at] = [i for i, hook in enumerate(hooks) if hook.__name__ == "cors_after_request"]
    assert hasattr(hooks[at], "__wrapped__"), "the direct path is in place"
    hooks[at] = hooks[at].__wrapped__
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    cases = [("GET", "/api/health-check", {}), ("GET", "/api/message_groups", ana), ("GET", "/api/message_groups", {}),
             ("POST", "/api/messages", {**ana, "Content-Type": "application/json"}), ("GET", "/nowhere", {}),
             ("OPTIONS", "/api/messages", preflight), ("OPTIONS", "/nowhere", preflight), ("DELETE", "/api/blocks", {})]
    for method, path, headers in cases:
        for origin in (None, ORIGIN, "https://elsewhere.example", ""):
            for private in ({}, {"Access-Control-Request-Private-Network": "true"}):
                sent = {**headers, **private, **({"Origin": origin} if origin is not None else {})}
                answers = [app.test_client().open(path, method=method, headers=sent, data=b"{}")
                           for app in (direct, reference)]
                assert answers[0].status_code == answers[1].status_code
                assert list(answers[0].headers.items()) == list(answers[1].headers.items()), (method, path, sent)
    from_frontend = direct.test_client().get("/api/health-check", headers={"Origin": ORIGIN})
    assert from_frontend.headers["Access-Control-Allow-Origin"] == ORIGIN and from_frontend.headers["Vary"] == "Origin"


def test_responses_are_flask_own_json_byte_for_byte(world):
    """app.py's JSON provider makes its encoder once; what it writes is what Flask's default
    provider writes (compact, ASCII-escaped, keys in order, a newline after), for every kind of
    value a response holds, and Flask's indented form in debug mode."""
    import datetime
    import decimal
    import uuid as uuids

    from flask import Flask
    from flask.json.provider import DefaultJSONProvider

    world.parts.db = FakeDb()
    settings = Settings(cursor_secret="fast", db_pool_min=0, cognito_user_pool_id="p", cognito_client_id="c",
                        frontend_url=ORIGIN)
    app = create_app(settings, world.parts)
    flask_own = Flask("reference")
    flask_own.json = DefaultJSONProvider(flask_own)
    flask_own.json.sort_keys = False
    values = [{"z": 1, "a": [True, None, 2.5, "é ☃ \U0001F600 \"quoted\" </script>"]},
              [{"uuid": uuids.UUID(int=7), "at": datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc),
                "n": decimal.Decimal("1.50")}], "plain", None, []]
    for value in values:
        with app.app_context():
            ours = app.json.response(value).get_data()
        with flask_own.app_context():
            theirs = flask_own.json.response(value).get_data()
        assert ours == theirs
    app.debug = flask_own.debug = True
    with app.app_context():
        ours = app.json.response(values[0]).get_data()
    with flask_own.app_context():
        assert ours == flask_own.json.response(values[0]).get_data()
