"""Cruddur's activities ("cruds") and replies, end to end through HTTP on the real stack, and
signing up as the frontend does (tests/conftest.py's `api`: gunicorn over the seeded stack)."""
from __future__ import annotations

import re
import uuid
from urllib.parse import urljoin

import psycopg
import pytest
import requests

from lib import aws
from lib.config import Settings
from devstack import LocalSettings

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
FIELDS = {"uuid", "display_name", "handle", "message", "created_at", "expires_at", "replies_count",
          "reposts_count", "likes_count", "reply_to_activity_uuid"}
SEEDED = "0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1a01"  # andrewbrown's, with two replies (db/seed.sql)


def auth(api, handle: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.tokens[handle]}"}


def ok(response: requests.Response) -> object:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def refused(response: requests.Response, status: int, code: str) -> None:
    assert (response.status_code, response.json()) == (status, [code]), response.text


def conforms(activity: dict, top_level: bool = True) -> None:
    assert FIELDS <= set(activity)
    assert ISO.match(activity["created_at"])
    assert activity["expires_at"] is None or ISO.match(activity["expires_at"])
    assert all(isinstance(activity[k], int) for k in ("replies_count", "reposts_count", "likes_count"))
    if top_level:
        assert isinstance(activity["replies"], list)
        for reply in activity["replies"]:
            conforms(reply, top_level=False)
            assert reply["reply_to_activity_uuid"] == activity["uuid"]
        times = [r["created_at"] for r in activity["replies"]]
        assert times == sorted(times), "replies oldest first"


def crud(api, handle: str, message: str, ttl: str = "7-days", **extra) -> dict:
    return ok(api.post("/api/activities", headers=auth(api, handle),
                       json={"message": message, "ttl": ttl, **extra}))


@pytest.fixture
def pg(settings: Settings):
    with psycopg.connect(settings.connection_url, autocommit=True) as conn:
        yield conn


# -- reading ---------------------------------------------------------------------------------------

def test_the_seeded_home_feed_is_not_empty_and_each_crud_has_its_replies(api):
    home = ok(api.get("/api/activities/home"))
    assert home, "a fresh stack shows a non-empty home feed"
    for activity in home:
        conforms(activity)
        assert activity["reply_to_activity_uuid"] is None
    times = [a["created_at"] for a in home]
    assert times == sorted(times, reverse=True), "newest first"
    seeded = next(a for a in home if a["uuid"] == SEEDED)
    assert [r["handle"] for r in seeded["replies"][:2]] == ["bayko", "londo"]
    assert seeded["replies_count"] >= 2
    # a signed-out frontend sends "Bearer null": the public feed does not read tokens
    assert ok(api.get("/api/activities/home", headers={"Authorization": "Bearer null"})) == home


def test_a_users_cruds_and_an_unknown_handle(api):
    mine = ok(api.get("/api/activities/@andrewbrown"))
    assert mine and {a["handle"] for a in mine} == {"andrewbrown"}
    for activity in mine:
        conforms(activity)
    refused(api.get("/api/activities/@nobody-by-this-name"), 404, "user_not_found")
    refused(api.get("/api/activities/@not%20a%20handle"), 404, "user_not_found")


def test_one_activity_with_its_replies_and_unknown_ones(api):
    activity = ok(api.get(f"/api/activities/{SEEDED}"))
    conforms(activity)
    refused(api.get(f"/api/activities/{uuid.uuid4()}"), 404, "activity_not_found")
    refused(api.get("/api/activities/not-a-uuid"), 404, "activity_not_found")


def test_expired_activities_are_in_no_list_and_not_found(api, pg):
    row = pg.execute(
        "INSERT INTO public.activities (user_uuid, message, expires_at, created_at) "
        "SELECT uuid, 'expired crud', now() - interval '1 minute', now() "
        "FROM public.users WHERE handle = 'bayko' RETURNING uuid::text").fetchone()
    expired = row[0]
    for path in ("/api/activities/home", "/api/activities/@bayko", "/api/activities/search?term=expired%20crud"):
        assert expired not in [a["uuid"] for a in ok(api.get(path))], path
    refused(api.get(f"/api/activities/{expired}"), 404, "activity_not_found")
    refused(api.get(f"/api/activities/@bayko/status/{expired}"), 404, "activity_not_found")
    refused(api.post(f"/api/activities/{expired}/reply", headers=auth(api, "londo"),
                     json={"message": "too late"}), 404, "activity_not_found")


def test_search_is_case_insensitive_and_takes_percent_and_underscore_literally(api):
    tag = uuid.uuid4().hex[:8]
    plain = crud(api, "bayko", f"Searching for {tag.upper()} here")
    percent = crud(api, "bayko", f"{tag} 100% sure")
    underscore = crud(api, "bayko", f"{tag} snake_case")
    found = [a["uuid"] for a in ok(api.get("/api/activities/search", params={"term": tag}))]
    assert set(found) >= {plain["uuid"], percent["uuid"], underscore["uuid"]}
    assert [a["uuid"] for a in ok(api.get("/api/activities/search", params={"term": f"{tag} 100%"}))] == [percent["uuid"]]
    assert [a["uuid"] for a in ok(api.get("/api/activities/search", params={"term": "e_c"}))
            if tag in a["message"]] == [underscore["uuid"]]
    assert ok(api.get("/api/activities/search", params={"term": f"{tag}%sure"})) == []
    for term in (None, "", "   "):
        refused(api.get("/api/activities/search", params={"term": term} if term is not None else {}),
                422, "term_blank")


# -- writing ---------------------------------------------------------------------------------------

def test_a_crud_is_the_token_users_whatever_the_body_says(api):
    made = crud(api, "londo", "  Posted by Londo  ", ttl="1-hour", user_handle="andrewbrown")
    conforms(made)
    assert (made["handle"], made["message"], made["replies"]) == ("londo", "Posted by Londo", [])
    assert ok(api.get("/api/activities/home"))[0]["uuid"] == made["uuid"]
    assert made["uuid"] in [a["uuid"] for a in ok(api.get("/api/activities/@londo"))]
    assert made["uuid"] not in [a["uuid"] for a in ok(api.get("/api/activities/@andrewbrown"))]


def test_bad_cruds_are_refused_with_their_codes_and_stored_never(api, pg):
    count = "SELECT count(*) FROM public.activities"
    before = pg.execute(count).fetchone()[0]
    headers = auth(api, "bayko")
    cases = [({"message": "", "ttl": "7-days"}, 422, "message_blank"),
             ({"message": "x" * 281, "ttl": "7-days"}, 422, "message_exceed_max_chars"),
             ({"message": "hi", "ttl": "2-weeks"}, 422, "ttl_invalid"),
             ({"message": "hi"}, 422, "ttl_invalid"),
             ({"message": 5, "ttl": "1-day"}, 422, "message_invalid"),
             ([1, 2], 400, "body_invalid")]
    for body, status, code in cases:
        refused(api.post("/api/activities", headers=headers, json=body), status, code)
    refused(api.post("/api/activities", json={"message": "no token", "ttl": "1-day"}), 401, "token_missing")
    assert pg.execute(count).fetchone()[0] == before
    assert crud(api, "bayko", "x" * 280)["message"] == "x" * 280


def test_a_reply_counts_into_its_parent_and_shows_in_its_replies(api):
    parent = crud(api, "andrewbrown", "Reply to me")
    reply = ok(api.post(f"/api/activities/{parent['uuid']}/reply", headers=auth(api, "bayko"),
                        json={"message": "Replying", "user_handle": "londo"}))
    conforms(reply, top_level=False)
    assert (reply["handle"], reply["reply_to_activity_uuid"], reply["expires_at"]) == \
        ("bayko", parent["uuid"], None)
    shown = ok(api.get(f"/api/activities/{parent['uuid']}"))
    assert shown["replies_count"] == 1 and [r["uuid"] for r in shown["replies"]] == [reply["uuid"]]
    home_copy = next(a for a in ok(api.get("/api/activities/home")) if a["uuid"] == parent["uuid"])
    assert [r["uuid"] for r in home_copy["replies"]] == [reply["uuid"]]
    refused(api.post(f"/api/activities/{uuid.uuid4()}/reply", headers=auth(api, "bayko"),
                     json={"message": "to nothing"}), 404, "activity_not_found")
    refused(api.post(f"/api/activities/{parent['uuid']}/reply", json={"message": "no token"}),
            401, "token_missing")
    refused(api.post(f"/api/activities/{parent['uuid']}/reply", headers=auth(api, "bayko"),
                     json={"message": " "}), 422, "message_blank")
    assert ok(api.get(f"/api/activities/{parent['uuid']}"))["replies_count"] == 1


def test_the_final_frontends_crud_page_is_the_crud_and_its_replies_for_its_handle_only(api):
    """GET /api/activities/@<handle>/status/<uuid>, as the final frontend's crud page calls it
    (no token, its JSON Content-Type, its origin): the crud and its replies oldest first."""
    parent = crud(api, "andrewbrown", "Look at my page")
    replies = [ok(api.post(f"/api/activities/{parent['uuid']}/reply", headers=auth(api, who),
                           json={"message": f"reply by {who}"}))["uuid"] for who in ("bayko", "londo")]
    headers = {"Content-Type": "application/json", "Origin": "http://localhost:3000"}
    page = ok(api.get(f"/api/activities/@AndrewBrown/status/{parent['uuid']}", headers=headers))
    assert set(page) == {"activity", "replies"}
    conforms(page["activity"])
    assert page["activity"]["uuid"] == parent["uuid"] and page["activity"]["replies_count"] == 2
    assert [r["uuid"] for r in page["replies"]] == replies
    for reply in page["replies"]:
        conforms(reply, top_level=False)
    refused(api.get(f"/api/activities/@bayko/status/{parent['uuid']}"), 404, "activity_not_found")
    refused(api.get(f"/api/activities/@andrewbrown/status/{uuid.uuid4()}"), 404, "activity_not_found")
    refused(api.get("/api/activities/@andrewbrown/status/not-a-uuid"), 404, "activity_not_found")


def test_notifications_are_replies_by_others_to_my_cruds(api):
    assert ok(api.get("/api/activities/notifications")) == [], "no token: nobody's, not an error"
    refused(api.get("/api/activities/notifications", headers={"Authorization": "Bearer nope"}),
            401, "token_malformed")
    mine = crud(api, "andrewbrown", "Notify me")
    theirs = ok(api.post(f"/api/activities/{mine['uuid']}/reply", headers=auth(api, "londo"),
                         json={"message": "Noted"}))
    ok(api.post(f"/api/activities/{mine['uuid']}/reply", headers=auth(api, "andrewbrown"),
                json={"message": "talking to myself"}))
    notified = ok(api.get("/api/activities/notifications", headers=auth(api, "andrewbrown")))
    assert notified[0]["uuid"] == theirs["uuid"]
    assert "talking to myself" not in [n["message"] for n in notified]
    assert theirs["uuid"] not in [n["uuid"] for n in
                                  ok(api.get("/api/activities/notifications", headers=auth(api, "bayko")))]


# -- lists are paginated like the messaging lists ------------------------------------------------------

def test_lists_page_with_limit_cursor_and_link(api):
    tag = uuid.uuid4().hex[:8]
    made = [crud(api, "bayko", f"page {tag} {i}")["uuid"] for i in range(5)]
    seen, url = [], f"/api/activities/search?term={tag}&limit=2"
    while url:
        response = api.get(url)
        seen += [a["uuid"] for a in ok(response)]
        link = response.links.get("next")
        url = urljoin(response.url, link["url"]).replace(api.url, "") if link else None
        assert len(seen) <= 5
    assert seen == made[::-1]
    first = api.get("/api/activities/home?limit=1")
    cursor = first.links["next"]["url"].split("cursor=")[1]
    refused(api.get(f"/api/activities/@bayko?cursor={cursor}"), 400, "cursor_invalid")
    refused(api.get("/api/activities/home?limit=0"), 400, "limit_invalid")


def test_activity_routes_answer_cors_preflights(api, settings: Settings):
    for path, method in (("/api/activities/home", "GET"), ("/api/activities", "POST"),
                         (f"/api/activities/{SEEDED}/reply", "POST"), ("/api/activities/@bayko", "GET")):
        preflight = api.session.options(api.url + path, timeout=10, headers={
            "Origin": settings.frontend_url, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == settings.frontend_url


# -- signing up, as the frontend does --------------------------------------------------------------

def test_a_user_who_just_signed_up_can_message_and_crud_at_once(api, settings: Settings, pg):
    """Amplify's sign-up (username = email; name, email, preferred_username), confirmation and
    sign-in against the local pool: no trigger runs there, so the API makes the user from Cognito
    with the post-confirmation trigger's own code, the first time it sees the token."""
    cognito = aws.client(settings, "cognito-idp")
    handle = f"new{uuid.uuid4().hex[:8]}"
    email = f"{handle}@example.test"
    password = LocalSettings().seed_password
    cognito.sign_up(ClientId=settings.cognito_client_id, Username=email, Password=password,
                    UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": "New Person"},
                                    {"Name": "preferred_username", "Value": handle}])
    cognito.confirm_sign_up(ClientId=settings.cognito_client_id, Username=email, ConfirmationCode="123456")
    token = cognito.initiate_auth(ClientId=settings.cognito_client_id, AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": email, "PASSWORD": password}
                                  )["AuthenticationResult"]["AccessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    sent = ok(api.post("/api/messages", headers=headers, json={"message": "Hello!", "handle": "bayko"}))
    assert (sent["handle"], sent["display_name"]) == (handle, "New Person")
    made = ok(api.post("/api/activities", headers=headers, json={"message": "My first crud", "ttl": "1-day"}))
    assert made["handle"] == handle
    sub = {a["Name"]: a["Value"] for a in cognito.get_user(AccessToken=token)["UserAttributes"]}["sub"]
    rows = pg.execute("SELECT handle, email, display_name FROM public.users WHERE cognito_user_id = %s",
                      [sub]).fetchall()
    assert rows == [(handle, email, "New Person")], "made once"


def test_a_pool_user_whose_handle_is_taken_is_refused_clearly(api, settings: Settings, pg):
    """A sign-up by the frontend is refused before its account exists (the pre-sign-up check:
    tests/stack/test_closed_doors.py). A pool user made otherwise (by an administrator, or two sign-ups
    racing past that check) whose handle is taken gets a clear 409 from the API, and nothing is
    written."""
    cognito = aws.client(settings, "cognito-idp")
    email = f"impostor{uuid.uuid4().hex[:8]}@example.test"
    password = LocalSettings().seed_password
    cognito.admin_create_user(UserPoolId=settings.cognito_user_pool_id, Username=email, MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": email},
                                              {"Name": "email_verified", "Value": "true"},
                                              {"Name": "name", "Value": "Not Bayko"},
                                              {"Name": "preferred_username", "Value": "bayko"}])
    cognito.admin_set_user_password(UserPoolId=settings.cognito_user_pool_id, Username=email,
                                    Password=password, Permanent=True)
    token = cognito.initiate_auth(ClientId=settings.cognito_client_id, AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": email, "PASSWORD": password}
                                  )["AuthenticationResult"]["AccessToken"]
    response = api.get("/api/message_groups", headers={"Authorization": f"Bearer {token}"})
    refused(response, 409, "handle_taken")
    assert pg.execute("SELECT count(*) FROM public.users WHERE handle = 'bayko'").fetchone()[0] == 1
