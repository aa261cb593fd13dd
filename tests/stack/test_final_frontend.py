"""The bootcamp's final frontend (branch week-x, cac5b76), replayed through HTTP against a real
gunicorn serving CRUDDUR_FRONTEND=final over the local stack: each call as that frontend makes it
(its method, its `Content-Type: application/json` even on a GET, so every call is preflighted
from its origin; its body), and every field it reads checked. The project cannot ship that
frontend's code; these are its calls."""
from __future__ import annotations

import pytest
import requests

from devstack import Stack, access_token, free_port, start_api
from lib.config import Settings

HANDLES = ("andrewbrown", "bayko", "londo")
SEEDED = "0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1a01"  # andrewbrown's, with two replies (db/seed.sql)


class Final:
    """The final frontend's side of the conversation: its origin, its headers."""

    def __init__(self, url: str, origin: str, tokens: dict[str, str]):
        self.url, self.origin, self.tokens = url, origin, tokens
        self.session = requests.Session()

    def call(self, method: str, path: str, handle: str | None = None, **kwargs) -> requests.Response:
        headers = {"Content-Type": "application/json", "Origin": self.origin}  # as its fetch() sends them
        if handle:
            headers["Authorization"] = f"Bearer {self.tokens[handle]}"
        wanted = ",".join(sorted(h.lower() for h in headers if h not in ("Origin",)))
        preflight = self.session.options(self.url + path, timeout=10, headers={
            "Origin": self.origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": wanted})
        assert preflight.status_code == 200, (path, preflight.status_code)
        assert preflight.headers["Access-Control-Allow-Origin"] == self.origin
        assert method in preflight.headers["Access-Control-Allow-Methods"]
        response = self.session.request(method, self.url + path, headers=headers, timeout=10, **kwargs)
        assert response.headers.get("Access-Control-Allow-Origin") == self.origin, path
        return response


@pytest.fixture(scope="module")
def final(settings: Settings):
    stack = Stack()
    try:
        url = start_api(settings.with_(frontend="final"), stack, free_port(), workers=1,
                        env={"CURSOR_SECRET": "test-cursor-secret"})
        yield Final(url, settings.frontend_url, {h: access_token(settings, h) for h in HANDLES})
    finally:
        stack.stop()


def test_the_crud_page_reads_the_crud_and_its_replies(final):
    page = final.call("GET", f"/api/activities/@andrewbrown/status/{SEEDED}")
    assert page.status_code == 200
    body = page.json()
    activity, replies = body["activity"], body["replies"]  # setActivity(data.activity), setReplies(data.replies)
    for field in ("uuid", "handle", "display_name", "message", "created_at", "expires_at", "replies_count",
                  "reposts_count", "likes_count"):
        assert field in activity, field
    assert activity["uuid"] == SEEDED and len(replies) == activity["replies_count"] >= 2
    assert [r["created_at"] for r in replies] == sorted(r["created_at"] for r in replies)
    assert final.call("GET", f"/api/activities/@bayko/status/{SEEDED}").status_code == 404


def test_a_reply_from_the_crud_page_shows_on_it(final):
    made = final.call("POST", "/api/activities", "bayko", json={"message": "a crud to answer", "ttl": "7-days"})
    assert made.status_code == 200
    crud = made.json()["uuid"]
    reply = final.call("POST", f"/api/activities/{crud}/reply", "londo", json={"message": "answered"})
    assert reply.status_code == 200 and reply.json()["reply_to_activity_uuid"] == crud
    page = final.call("GET", f"/api/activities/@bayko/status/{crud}").json()
    assert [r["message"] for r in page["replies"]] == ["answered"] and page["activity"]["replies_count"] == 1


def test_the_profile_page_reads_the_profile_and_the_users_cruds(final):
    page = final.call("GET", "/api/activities/@andrewbrown")
    assert page.status_code == 200
    body = page.json()
    profile, activities = body["profile"], body["activities"]
    # ProfileHeading reads these
    for field in ("display_name", "handle", "bio", "cruds_count", "cognito_user_uuid", "uuid"):
        assert field in profile, field
    assert profile["handle"] == "andrewbrown" and profile["cruds_count"] >= len(activities) >= 1
    assert profile["cognito_user_uuid"], "the avatar's key names it"
    assert all(a["handle"] == "andrewbrown" for a in activities)
    missing = final.call("GET", "/api/activities/@nobody-at-all")
    assert (missing.status_code, missing.json()) == (404, ["user_not_found"])


def test_editing_the_profile_renames_the_user_in_every_list(final):
    """PUT /api/profile/update as the profile form sends it; londo's new name is then what bayko's
    conversation list and the conversation's messages show (the same server: at once), and
    what the profile page reads."""
    before = final.call("GET", "/api/activities/@londo").json()["profile"]
    sent = final.call("POST", "/api/messages", "londo", json={"handle": "bayko", "message": "before the rename"})
    assert sent.status_code == 200
    group = sent.json()["message_group_uuid"]
    try:
        answer = final.call("PUT", "/api/profile/update", "londo",
                            json={"bio": "Renamed for a test", "display_name": "Londo Renamed"})
        assert answer.status_code == 200
        assert answer.json() == {"uuid": before["uuid"], "handle": "londo", "display_name": "Londo Renamed",
                                 "bio": "Renamed for a test"}
        conversations = final.call("GET", "/api/message_groups", "bayko").json()
        assert next(c for c in conversations if c["uuid"] == group)["display_name"] == "Londo Renamed"
        messages = final.call("GET", f"/api/messages/{group}", "bayko").json()
        assert {m["display_name"] for m in messages if m["handle"] == "londo"} == {"Londo Renamed"}
        assert final.call("GET", "/api/activities/@londo").json()["profile"]["bio"] == "Renamed for a test"
        too_long = final.call("PUT", "/api/profile/update", "londo", json={"bio": "x" * 161})
        assert (too_long.status_code, too_long.json()) == (422, ["bio_too_long"])
    finally:
        final.call("PUT", "/api/profile/update", "londo",
                   json={"bio": before["bio"] or "", "display_name": before["display_name"]})
