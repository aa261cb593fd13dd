"""aws/lambdas/cruddur-post-confirmation.py: the Cognito trigger that makes the Cruddur user of a
confirmed sign-up, against the suite's PostgreSQL."""
from __future__ import annotations

import uuid

import psycopg
import pytest

from devstack import lambdas


@pytest.fixture(scope="module")
def trigger():
    return lambdas.load(lambdas.LAMBDAS / "cruddur-post-confirmation.py")


@pytest.fixture
def env(settings, monkeypatch, trigger):
    """The suite's database for the trigger; the users a test makes are removed after it."""
    monkeypatch.setenv("CONNECTION_URL", settings.connection_url)
    monkeypatch.setattr(trigger, "_db", trigger.OneConnection())
    with psycopg.connect(settings.connection_url, autocommit=True) as conn:
        before = {row[0] for row in conn.execute("SELECT uuid FROM public.users")}
        yield conn
        made = [u for (u,) in conn.execute("SELECT uuid FROM public.users") if u not in before]
        conn.execute("DELETE FROM public.users WHERE uuid = ANY(%s)", [made])


def event(handle: str, email: str | None = None, sub: str | None = None,
          source: str = "PostConfirmation_ConfirmSignUp") -> dict:
    """As Cognito hands it to the trigger."""
    return {"version": "1", "triggerSource": source, "region": "us-east-1", "userPoolId": "us-east-1_x",
            "userName": email or f"{handle}@example.test", "callerContext": {"clientId": "c"},
            "request": {"userAttributes": {
                "sub": sub or str(uuid.uuid4()), "email_verified": "true", "cognito:user_status": "CONFIRMED",
                "name": f"Name of {handle}", "preferred_username": handle,
                "email": email or f"{handle}@example.test"}},
            "response": {}}


def rows(conn, handle: str) -> list[tuple]:
    return conn.execute("SELECT display_name, email, cognito_user_id FROM public.users WHERE handle = %s",
                        [handle]).fetchall()


def test_a_confirmed_sign_up_makes_its_user_once(trigger, env):
    handle = f"su{uuid.uuid4().hex[:8]}"
    confirmed = event(handle)
    assert trigger.lambda_handler(confirmed, None) == confirmed  # Cognito wants the event back
    sub = confirmed["request"]["userAttributes"]["sub"]
    assert rows(env, handle) == [(f"Name of {handle}", f"{handle}@example.test", sub)]
    trigger.lambda_handler(confirmed, None)  # replayed: nothing changes
    assert rows(env, handle) == [(f"Name of {handle}", f"{handle}@example.test", sub)]


def test_a_taken_handle_or_email_is_a_clear_failure(trigger, env):
    with pytest.raises(trigger.UserConflict, match="the handle bayko is taken") as taken:
        trigger.lambda_handler(event("bayko", email=f"other{uuid.uuid4().hex[:6]}@example.test"), None)
    assert taken.value.code == "handle_taken"
    linked = env.execute("SELECT email FROM public.users WHERE cognito_user_id IS NOT NULL LIMIT 1").fetchone()[0]
    with pytest.raises(trigger.UserConflict) as email:
        trigger.lambda_handler(event(f"fresh{uuid.uuid4().hex[:6]}", email=linked.upper()), None)
    assert email.value.code == "email_taken"
    with pytest.raises(trigger.UserInvalid):
        trigger.lambda_handler(event("not a handle!"), None)


def test_an_invited_user_without_an_identity_is_linked_by_their_confirmed_email(trigger, env):
    handle = f"old{uuid.uuid4().hex[:8]}"
    env.execute("INSERT INTO public.users (display_name, handle, email) VALUES (%s, %s, %s)",
                [handle, handle, f"{handle}@example.test"])
    confirmed = event(f"{handle}x", email=f"{handle}@EXAMPLE.test")
    trigger.lambda_handler(confirmed, None)
    assert rows(env, handle)[0][2] == confirmed["request"]["userAttributes"]["sub"]
    assert rows(env, f"{handle}x") == [], "linked, not made twice"


def test_other_triggers_pass_through_untouched(trigger, env):
    handle = f"fp{uuid.uuid4().hex[:8]}"
    forgot = event(handle, source="PostConfirmation_ConfirmForgotPassword")
    assert trigger.lambda_handler(forgot, None) == forgot
    assert rows(env, handle) == []
