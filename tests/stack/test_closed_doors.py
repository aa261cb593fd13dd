"""Issue 24, "Closed doors": each hole an attacker or an operator found, shut, through the code that
shuts it. The identity rules against the suite's PostgreSQL (domain/identity.py and lib/users.py, which both the
post-confirmation Lambda and the API run); the rest through HTTP."""
from __future__ import annotations

import json
import socket
import uuid

import psycopg
import pytest

from app import create_app
from lib.conversations import layout
from domain import identity
from domain import visible_text as text
from lib import aws, metrics
from lib import users as user_store
from lib.config import Settings
from lib import db
from lib.sql_files import template
from psycopg.conninfo import make_conninfo
from services import activities
from tests.http_api import Users, error, get, post, send
# the sign-up Lambda, and the suite's database (the users a test makes are removed after it)
from tests.stack.test_post_confirmation import env, trigger  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def users(settings):
    made = Users(settings)
    yield made
    made.close()


def attributes(handle: str, email: str | None = None, verified: bool = True, **more: str) -> dict:
    return {"sub": str(uuid.uuid4()), "email": email or f"{handle}@example.test",
            "email_verified": "true" if verified else "false", "name": f"Name of {handle}",
            "preferred_username": handle, **more}


def event(source: str, attrs: dict) -> dict:
    return {"version": "1", "triggerSource": source, "userPoolId": "us-east-1_x",
            "request": {"userAttributes": attrs}, "response": {}}


def unlinked_user(env, handle: str) -> str:
    """A user as the week-5 schema left them: no Cognito identity (their 'MOCK' id emptied)."""
    return env.execute("INSERT INTO public.users (display_name, handle, email) VALUES (%s, %s, %s) "
                      "RETURNING uuid::text", [handle, handle, f"{handle}@example.test"]).fetchone()[0]


def identity_of(env, uuid_: str) -> str | None:
    return env.execute("SELECT cognito_user_id FROM public.users WHERE uuid = %s", [uuid_]).fetchone()[0]


# -- 1. no takeover through sign-up ------------------------------------------------------------

@pytest.mark.parametrize("verified", ["false", None], ids=["unverified", "no-attribute"])
def test_a_confirmation_without_a_verified_email_links_nobody(trigger, env, verified):
    """AdminConfirmSignUp, an auto-confirm or a pool that verifies the phone: the email was never
    proven, so the week-5 user who has it stays theirs. The trigger lets the confirmation through
    (the API makes the user once the email is verified) instead of stranding the account."""
    victim = unlinked_user(env, f"old{uuid.uuid4().hex[:8]}")
    attacker = attributes(f"x{uuid.uuid4().hex[:8]}", email=f"{victim_handle(env, victim)}@example.test")
    if verified is None:
        del attacker["email_verified"]
    else:
        attacker["email_verified"] = verified
    confirmed = event("PostConfirmation_ConfirmSignUp", attacker)
    assert trigger.lambda_handler(confirmed, None) == confirmed
    assert identity_of(env, victim) is None
    with pytest.raises(identity.EmailUnverified):
        user_store.create_user(env, attacker)
    assert identity_of(env, victim) is None
    attacker["email_verified"] = "true"  # once the pool has verified it, the owner is linked
    assert user_store.create_user(env, attacker) == victim
    assert identity_of(env, victim) == attacker["sub"]


def victim_handle(env, uuid_: str) -> str:
    return env.execute("SELECT handle FROM public.users WHERE uuid = %s", [uuid_]).fetchone()[0]


def test_the_api_makes_no_user_for_an_unverified_email(api, users: Users, env):
    """The API's own provisioning (where no trigger runs) runs the same rule."""
    victim = unlinked_user(env, f"old{uuid.uuid4().hex[:8]}")
    handle = victim_handle(env, victim)
    email, _ = users.cognito_user(f"{handle}", verified=False)
    token = users.sign_in(email)["AccessToken"]
    response = api.session.get(api.url + "/api/message_groups",
                               headers={"Authorization": f"Bearer {token}"}, timeout=10)
    error(response, 403, "user_unknown")
    assert identity_of(env, victim) is None


# -- 2. refused before the account exists --------------------------------------------------------

def test_pre_sign_up_refuses_what_confirmation_could_not_make(trigger, env):
    fresh = f"ps{uuid.uuid4().hex[:8]}"
    ok = event("PreSignUp_SignUp", attributes(fresh))
    assert trigger.lambda_handler(ok, None) == ok
    for source in ("PreSignUp_SignUp", "PreSignUp_AdminCreateUser"):
        with pytest.raises(identity.UserConflict, match="the handle BAYKO is taken") as taken:
            trigger.lambda_handler(event(source, attributes("BAYKO")), None)
        assert taken.value.code == "handle_taken"
    linked = env.execute("SELECT email FROM public.users WHERE cognito_user_id IS NOT NULL LIMIT 1").fetchone()[0]
    with pytest.raises(identity.UserConflict) as email:
        trigger.lambda_handler(event("PreSignUp_SignUp", attributes(fresh, email=linked.upper())), None)
    assert email.value.code == "email_taken"
    with pytest.raises(identity.UserInvalid) as name:
        trigger.lambda_handler(event("PreSignUp_SignUp", attributes(fresh, name="\u202eevil")), None)
    assert name.value.code == "display_name_invalid"
    # a week-5 user's account is opened by the operator's invitation, under their own handle in any case
    old = victim_handle(env, unlinked_user(env, f"old{uuid.uuid4().hex[:8]}"))
    own = event("PreSignUp_AdminCreateUser", attributes(old.upper(), email=f"{old}@example.test"))
    assert trigger.lambda_handler(own, None) == own
    assert env.execute("SELECT count(*) FROM public.users WHERE handle = %s", [fresh]).fetchone()[0] == 0


# -- issue 33: a week-5 user's email cannot be squatted; two links at once; handles; names --------

@pytest.mark.parametrize("source", ["PreSignUp_SignUp", "PreSignUp_ExternalProvider"])
def test_a_self_sign_up_with_the_email_of_a_user_not_yet_linked_is_refused(trigger, env, source):
    """Anyone may try to sign up with a week-5 user's email and a password of their own; were it
    let through, the real person confirming it ("resend code") would link their row to an account
    whose password the squatter set. Only the operator's invitation (AdminCreateUser, which mails
    a temporary password to that address) opens such a user."""
    victim = unlinked_user(env, f"old{uuid.uuid4().hex[:8]}")
    handle = victim_handle(env, victim)
    for squat in (attributes(f"sq{uuid.uuid4().hex[:8]}", email=f"{handle}@example.test"),
                  attributes(handle, email=f"{handle.upper()}@EXAMPLE.test")):
        with pytest.raises(identity.UserConflict) as refused:
            trigger.lambda_handler(event(source, squat), None)
        assert refused.value.code == "email_reserved"
    invited = event("PreSignUp_AdminCreateUser", attributes(handle, email=f"{handle}@example.test"))
    assert trigger.lambda_handler(invited, None) == invited
    assert identity_of(env, victim) is None


def test_the_local_pool_refuses_a_squatters_sign_up_and_the_invitation_opens_the_account(users: Users, env, settings):
    """Locally as in AWS: moto's sign-up runs the same check; bin/cognito/invite makes the account
    for the week-5 user's email (AdminCreateUser), and their first request links their row."""
    import subprocess

    from botocore.exceptions import ClientError
    from lib.config import ROOT

    victim = unlinked_user(env, f"old{uuid.uuid4().hex[:8]}")
    handle = victim_handle(env, victim)
    email = f"{handle}@example.test"
    with pytest.raises(ClientError) as refused:
        users.cognito.sign_up(ClientId=users.client_id, Username=email, Password="Passw0rd!-long",
                              UserAttributes=[{"Name": "email", "Value": email},
                                              {"Name": "name", "Value": "Squatter"},
                                              {"Name": "preferred_username", "Value": f"sq{handle}"}])
    assert "belongs to a Cruddur account from before sign-ups" in refused.value.response["Error"]["Message"]
    environment = {**__import__("os").environ, "CONNECTION_URL": settings.connection_url,
                   "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
                   "AWS_COGNITO_USER_POOL_ID": settings.cognito_user_pool_id}
    invited = subprocess.run([str(ROOT / "bin" / "cognito" / "invite"), handle], env=environment,
                             capture_output=True, text=True, timeout=120)
    assert invited.returncode == 0, invited.stdout + invited.stderr
    assert f"invited {handle}" in invited.stdout
    again = subprocess.run([str(ROOT / "bin" / "cognito" / "invite"), handle], env=environment,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already" in again.stdout, again.stdout + again.stderr
    made = users.cognito.admin_get_user(UserPoolId=users.pool_id, Username=email)
    assert made["UserStatus"] == "FORCE_CHANGE_PASSWORD"  # only the mailbox's owner learns the password
    attributes_of = {a["Name"]: a["Value"] for a in made["UserAttributes"]}
    assert attributes_of["email_verified"] == "true" and attributes_of["preferred_username"] == handle
    users.cognito.admin_set_user_password(UserPoolId=users.pool_id, Username=email,
                                          Password="Testpassword1!", Permanent=True)  # as the owner would
    app = create_app(settings.with_(cursor_secret="x"))
    try:
        token = users.sign_in(email)["AccessToken"]
        me = app.test_client().get("/api/message_groups", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.json
        assert identity_of(env, victim) == attributes_of["sub"]
    finally:
        app.extensions["parts"].db.close()


def test_of_two_confirmations_of_one_email_at_once_the_second_is_refused_and_logged(settings, env, caplog):
    """The link takes a user without an identity: a second confirmation racing the first finds
    the row linked when its update runs, and is refused, never overwriting the first."""
    import threading

    victim = unlinked_user(env, f"old{uuid.uuid4().hex[:8]}")
    email = f"{victim_handle(env, victim)}@example.test"
    first, second = attributes("first", email=email), attributes("second", email=email)
    outcome: list[object] = []
    with psycopg.connect(settings.connection_url, autocommit=True) as one, \
            psycopg.connect(settings.connection_url, autocommit=True) as two:
        with one.transaction():
            assert user_store.create_user(one, first) == victim  # linked, not yet committed

            def race() -> None:
                try:
                    outcome.append(user_store.create_user(two, second))
                except identity.UserConflict as error:
                    outcome.append(error.code)

            racer = threading.Thread(target=race)
            with caplog.at_level("WARNING", logger="cruddur.identity"):
                racer.start()
                racer.join(1.0)  # it waits on the row the first holds
                assert racer.is_alive()
        racer.join(10)
    assert outcome == ["email_taken"]
    assert identity_of(env, victim) == first["sub"]
    assert any("refused to link" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("handle", [".", "..", "-", "_", "._-", "...."])
def test_a_handle_without_a_letter_or_digit_is_refused(env, handle):
    with pytest.raises(identity.UserInvalid) as refused:
        user_store.create_user(env, attributes(handle, email=f"h{uuid.uuid4().hex[:8]}@example.test"))
    assert refused.value.code == "handle_invalid"
    assert identity.is_handle("a.b") and identity.is_handle("_x") and identity.is_handle("7")


def test_the_api_answers_a_handle_without_a_letter_or_digit_as_invalid(api, users: Users):
    sender = users.make("hs")
    for handle in ("..", "-", ".", "_"):
        error(post(api, "/api/messages", sender, json={"handle": handle, "message": "hi"}), 422, "handle_invalid")


# -- 3. handles unique regardless of case; display names validated -----------------------------

def test_handles_are_unique_regardless_of_case(env):
    with pytest.raises(identity.UserConflict) as taken:
        user_store.create_user(env, attributes("AndrewBrown"))
    assert taken.value.code == "handle_taken"
    with pytest.raises(psycopg.errors.UniqueViolation):  # the schema holds it against any path
        env.execute("INSERT INTO public.users (display_name, handle, email) VALUES ('x', 'ANDREWBROWN', 'x@x.test')")


def test_a_handle_is_found_in_any_case(api):
    response = get(api, "/api/users/@AndrewBrown/short")
    assert response.status_code == 200 and response.json()["handle"] == "andrewbrown"


@pytest.mark.parametrize("name, why", [
    ("\u202eevil", r"U\+202E"), ("Zero\u200bwidth", r"U\+200B"), ("line\nbreak", r"U\+000A"),
    ("\u200b\u2060", "blank"), ("x" * 65, "over 64"), ("\u3164", "blank"),
    ("\u0410ndrew Brown", "mixes Cyrillic and Latin"), ("B\u0430yko", "mixes Cyrillic and Latin"),
    ("L\u03bfndo", "mixes Greek and Latin")])
def test_a_display_name_that_hides_or_misleads_is_refused(env, name, why):
    with pytest.raises(identity.UserInvalid, match=why) as refused:
        user_store.create_user(env, attributes(f"dn{uuid.uuid4().hex[:8]}", name=name))
    assert refused.value.code == "display_name_invalid"


# -- 5. "not yours" and "does not exist": the same work ----------------------------------------

def test_not_yours_costs_the_same_reads_as_does_not_exist(api, users: Users):
    a, b, c, stranger = (users.make(p) for p in ("ta", "tb", "tc", "ts"))
    send(api, a, "we talk", to=b)
    talking, silent = layout.group_uuid_for(a.uuid, b.uuid), layout.group_uuid_for(a.uuid, c.uuid)
    assert get(api, f"/api/messages/{talking}", a).status_code == 200  # now cached as a's

    def reads(group: str) -> int:
        before = api.metrics()
        error(get(api, f"/api/messages/{group}", stranger), 404, "message_group_not_found")
        after = api.metrics()
        return after.get("dynamodb_calls", 0) - before.get("dynamodb_calls", 0)

    assert [reads(talking), reads(talking)] == [reads(silent), reads(silent)]
    assert reads(talking) >= 1


# -- 8, 14. whole-string patterns; invisible texts ----------------------------------------------

def test_a_trailing_newline_is_not_part_of_a_valid_value(api, seeded_pair):
    a, _, group = seeded_pair
    assert not identity.is_handle("andrewbrown\n")
    error(post(api, "/api/messages", a, json={"message": "hi", "handle": "bayko\n"}), 422, "handle_invalid")
    assert get(api, "/api/users/@andrewbrown%0A/short").status_code == 404
    error(get(api, f"/api/messages/{group}?limit=5%0A", a), 400, "limit_invalid")


INVISIBLE = ["\u200b", "\u2060", "\ufeff", "\u200f", "\u3164", "\u2800", "\u115f\u1160",
             "\u200b \u200c\u200d", "\u0301"]


@pytest.fixture
def seeded_pair(api, users: Users):
    a, b = users.make("ia"), users.make("ib")
    return a, b, send(api, a, "first", to=b)["message_group_uuid"]


def test_a_message_or_crud_of_invisible_characters_is_blank(api, seeded_pair):
    a, _, group = seeded_pair
    for invisible in INVISIBLE:
        assert text.is_blank(invisible)
        error(post(api, "/api/messages", a, json={"message": invisible, "message_group_uuid": group}),
              422, "message_blank")
        error(post(api, "/api/activities", a, json={"message": invisible, "ttl": "1-day"}), 422,
              "message_blank")
    assert not text.is_blank("e\u0301") and not text.is_blank("\u05d0")  # marks on a base; RTL letters
    assert send(api, a, "\u200bvisible", group=group)["message"] == "\u200bvisible"


# -- 15. shared caches and sniffing -------------------------------------------------------------

def test_every_response_varies_by_origin_and_is_not_sniffed(api, settings: Settings):
    for headers in ({}, {"Origin": "https://elsewhere.example"}):
        for path in ("/api/activities/home", "/api/health-check", "/api/nothing-here"):
            response = api.session.get(api.url + path, headers=headers, timeout=10)
            assert "origin" in response.headers.get("Vary", "").lower(), (path, headers)
            assert response.headers["X-Content-Type-Options"] == "nosniff"


# -- 16. readiness notices a dead store -----------------------------------------------------------

def test_ready_checks_both_stores_and_health_check_only_postgres(api, settings: Settings):
    assert api.get("/api/ready").json() == {"ready": True, "checks": {"postgres": True, "dynamodb": True}}
    silent = socket.socket()  # accepts connections and never answers: a frozen store
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        frozen = f"http://127.0.0.1:{silent.getsockname()[1]}"
        app = create_app(settings.with_(service_endpoints=(("dynamodb", frozen),), cursor_secret="x"))
        client = app.test_client()
        assert client.get("/api/health-check").status_code == 200
        response = client.get("/api/ready")
        assert (response.status_code, response.json) == (503, ["not_ready"])
        assert "dynamodb" in response.headers["X-Error-Detail"] and response.headers["Retry-After"]
        before = metrics.snapshot().get("dynamodb_calls", 0)
        assert client.get("/api/ready").status_code == 503  # the answer of a moment ago
        assert metrics.snapshot().get("dynamodb_calls", 0) == before
    finally:
        silent.close()
        app.extensions["parts"].db.close()


# -- 7. search: an index, a bound ------------------------------------------------------------------

def test_search_needs_three_characters_and_is_served_by_the_trigram_index(api, settings: Settings):
    """A term of 3 characters or more; and at scale (a database of its own with 20,000 cruds) the
    plan finds the cruds that contain a term through the trigram index, not by reading them all."""
    error(get(api, "/api/activities/search?term=ab"), 422, "term_too_short")
    assert get(api, "/api/activities/search?term=abc").status_code == 200
    url = make_conninfo(settings.connection_url, dbname=f"search_{uuid.uuid4().hex[:8]}")
    db.create_database(url)
    try:
        db.run_sql_file(url, db.SCHEMA_FILE)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO public.users (display_name, handle, email) VALUES ('a', 'a', 'a@x.test')")
            # the oldest 6,000 say "older", the newest 14,000 "fresh"
            conn.execute("INSERT INTO public.activities (user_uuid, message, expires_at, created_at) "
                         "SELECT (SELECT uuid FROM public.users), "
                         "CASE WHEN n <= 6000 THEN 'older' ELSE 'fresh' END || ' crud number ' || n, "
                         "now() + interval '1 day', now() - interval '1 day' + n * interval '1 second' "
                         "FROM generate_series(1, 20000) n")
            conn.execute("VACUUM ANALYZE")  # as autovacuum would: the index's pending list merged
            # a term no crud contains, and one that many older cruds do: walked newest first
            # (which the planner picks for a term it thinks common), the first page of "older"
            # would read the 14,000 newer cruds first
            plans = ["\n".join(r[0] for r in conn.execute(
                "EXPLAIN " + template("activities", "search"),
                {"pattern": term, "after_at": "infinity",
                 "after_uuid": "ffffffff-ffff-ffff-ffff-ffffffffffff", "limit": 21}))
                for term in ("needle", "older")]
    finally:
        db.drop_database(url)
    for plan in plans:
        assert "activities_message_trgm_idx" in plan, plan
        assert "Seq Scan on activities" not in plan and "activities_feed_idx" not in plan, plan


def test_searches_past_the_slots_are_429_and_the_rest_still_answers(settings: Settings, monkeypatch):
    monkeypatch.setattr(activities, "SEARCH_SLOTS", activities.threading.BoundedSemaphore(1))
    app = create_app(settings.with_(cursor_secret="x"))
    try:
        client = app.test_client()
        assert activities.SEARCH_SLOTS.acquire(blocking=False)  # a search in progress
        busy = client.get("/api/activities/search?term=crud")
        assert (busy.status_code, busy.json) == (429, ["search_busy"])
        assert busy.headers["Retry-After"] == "1"
        assert client.get("/api/activities/home").status_code == 200
        activities.SEARCH_SLOTS.release()
        assert client.get("/api/activities/search?term=crud").status_code == 200
    finally:
        app.extensions["parts"].db.close()


# -- 4. revocation against the real (local) user pool --------------------------------------------

@pytest.mark.parametrize("revoke", ["admin_disable_user", "admin_user_global_sign_out", "admin_delete_user"])
def test_a_disabled_signed_out_or_deleted_user_loses_access(settings: Settings, users: Users, revoke):
    """With a recheck time of a millisecond every request asks the pool: what Cognito's GetUser
    says of a disabled, signed-out or deleted user, the API answers with a 401."""
    person = users.make("rv")
    app = create_app(settings.with_(token_recheck_seconds=0.001, cursor_secret="x"))
    try:
        client = app.test_client()
        auth = {"Authorization": f"Bearer {person.token}"}
        assert client.get("/api/message_groups", headers=auth).status_code == 200
        getattr(users.cognito, revoke)(UserPoolId=users.pool_id, Username=person.email)
        response = client.get("/api/message_groups", headers=auth)
        assert (response.status_code, response.json) == (401, ["token_revoked"])
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    finally:
        app.extensions["parts"].db.close()


# -- 9. the trigger's connection from Secrets Manager ----------------------------------------------

@pytest.mark.parametrize("form", ["url", "json"])
def test_the_trigger_reads_its_connection_url_from_a_secret_and_speaks_verified_tls(
        trigger, settings: Settings, monkeypatch, form, tls_database):
    """Deployed (its URL from Secrets Manager), the trigger talks to PostgreSQL over TLS only, with
    the server's certificate checked against the packaged RDS bundle for the host it asked for
    (sslmode=verify-full), whatever the URL says (issue 33, item 11)."""
    from lib import lambda_support

    url, bundle = tls_database
    loose = url + "?sslmode=disable"  # an operator's URL cannot turn it off
    secret = loose if form == "url" else json.dumps({"url": loose})
    arn = aws.client(settings, "secretsmanager").create_secret(
        Name=f"test/{uuid.uuid4().hex[:8]}", SecretString=secret)["ARN"]
    monkeypatch.delenv("CONNECTION_URL", raising=False)
    monkeypatch.setenv("CONNECTION_SECRET_ARN", arn)
    monkeypatch.setattr(trigger, "_db", trigger.OneConnection())
    monkeypatch.setattr(lambda_support, "ca_bundle_path", lambda: bundle)
    ok = event("PreSignUp_SignUp", attributes(f"sec{uuid.uuid4().hex[:8]}"))
    assert trigger.lambda_handler(ok, None) == ok
    assert trigger._db.get().pgconn.ssl_in_use
    with pytest.raises(identity.UserConflict):  # it did read the database
        trigger.lambda_handler(event("PreSignUp_SignUp", attributes("bayko")), None)
    # a server without TLS (the suite's), or one whose certificate the bundle did not sign: refused
    for where, said in ((settings.connection_url, "does not support SSL"),
                        (url.replace("localhost", "127.0.0.1"), "does not match host name")):
        aws.client(settings, "secretsmanager").put_secret_value(SecretId=arn, SecretString=where)
        monkeypatch.setattr(trigger, "_db", trigger.OneConnection())
        with pytest.raises(psycopg.OperationalError, match=said):
            trigger.lambda_handler(ok, None)


def test_the_local_pool_refuses_a_sign_up_as_the_trigger_does_in_aws(users: Users, env):
    """moto runs no trigger; the local stack's moto runs the sign-up Lambda's pre-sign-up check
    itself (devstack/moto_corrections/cognito.py, correction 9), so a taken handle is refused locally too,
    before the account exists, with Cognito's own error."""
    from botocore.exceptions import ClientError

    def sign_up(handle: str, email: str):
        return users.cognito.sign_up(ClientId=users.client_id, Username=email, Password="Passw0rd!-long",
                                     UserAttributes=[{"Name": "email", "Value": email},
                                                     {"Name": "name", "Value": "Someone"},
                                                     {"Name": "preferred_username", "Value": handle}])

    email = f"new{uuid.uuid4().hex[:8]}@example.test"
    with pytest.raises(ClientError) as refused:
        sign_up("BAYKO", email)
    assert refused.value.response["Error"]["Code"] == "UserLambdaValidationException"
    assert "PreSignUp failed with error the handle BAYKO is taken" in refused.value.response["Error"]["Message"]
    with pytest.raises(users.cognito.exceptions.UserNotFoundException):
        users.cognito.admin_get_user(UserPoolId=users.pool_id, Username=email)
    assert sign_up(f"new{uuid.uuid4().hex[:8]}", email)["UserSub"]  # nothing left behind: free again
