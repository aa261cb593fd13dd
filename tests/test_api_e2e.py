"""End-to-end through HTTP: a real gunicorn server over the local stack (the `api` fixture), tokens
from the local Cognito pool. The four access patterns for andrewbrown, bayko and londo; every
forbidden case; pagination; idempotency; each bad input; CORS; the steady-state costs; the access log.

Exact assertions about whole lists use fresh users (created in PostgreSQL and the local pool), so
that they hold whatever else the suite has written for the seeded users."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk as jose_jwk
from jose import jwt as jose_jwt
from openapi_schema_validator import OAS30Validator

from domain import times
from lib import aws, config
from lib import ddb as dynamo
from lib.conversations import layout
from lib.config import Settings
from devstack import LocalSettings

SPEC = yaml.safe_load((config.ROOT / "openapi.yml").read_text())
ERROR_CODES = set(SPEC["components"]["schemas"]["ErrorCode"]["enum"])
PASSWORD = LocalSettings().seed_password


# -- helpers -------------------------------------------------------------------------------------

@dataclass
class User:
    uuid: str
    handle: str
    display_name: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def check(response: requests.Response) -> requests.Response:
    """What holds for every response: no 5xx, and every 4xx body a JSON array of known codes."""
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, list) and body, body
        assert all(isinstance(code, str) for code in body), body
        assert set(body) <= ERROR_CODES, body
    return response


def request(api, method: str, path: str, user: User | None = None, *,
            headers: dict[str, str] | None = None, session: requests.Session | None = None,
            **kwargs) -> requests.Response:
    sent = {**(user.auth if user else {}), **(headers or {})}
    url = path if path.startswith("http") else api.url + path
    response = (session or api.session).request(method, url, headers=sent, timeout=10, **kwargs)
    return check(response)


def get(api, path: str, user: User | None = None, **kwargs) -> requests.Response:
    return request(api, "GET", path, user, **kwargs)


def post(api, path: str, user: User | None = None, **kwargs) -> requests.Response:
    return request(api, "POST", path, user, **kwargs)


def send(api, user: User, message: str, *, to: User | None = None, group: str | None = None,
         key: str | None = None) -> dict[str, Any]:
    """Pattern C (to=) or D (group=), asserting success."""
    body = {"message": message, **({"handle": to.handle} if to else {}),
            **({"message_group_uuid": group} if group else {})}
    headers = {"Idempotency-Key": key} if key else {}
    response = post(api, "/api/messages", user, json=body, headers=headers)
    assert response.status_code == 200, response.text
    conforms(response.json(), "CreatedMessage")
    # by handle (C) the reply names the conversation; into one (D) it does not: the frontend
    # appends such a message, and reloads the page on one that names it
    assert ("message_group_uuid" in response.json()) == (to is not None), response.json()
    return response.json()


def messages(api, user: User, group: str, limit: int = 100) -> list[dict[str, Any]]:
    response = get(api, f"/api/messages/{group}?limit={limit}", user)
    assert response.status_code == 200, response.text
    conforms(response.json(), "Message", array=True)
    return response.json()


def groups(api, user: User, limit: int = 100) -> list[dict[str, Any]]:
    response = get(api, f"/api/message_groups?limit={limit}", user)
    assert response.status_code == 200, response.text
    conforms(response.json(), "MessageGroup", array=True)
    return response.json()


def conforms(body: Any, schema_name: str, array: bool = False) -> None:
    """The body matches the spec's schema (the contract's fields, uuids, +00:00 times)."""
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    schema = {"components": SPEC["components"], **({"type": "array", "items": ref} if array else ref)}
    OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER).validate(body)


def error(response: requests.Response, status: int, code: str) -> None:
    assert (response.status_code, response.json()) == (status, [code]), response.text


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0)
            for k in ("dynamodb_calls", "pg_queries", "jwks_fetches")}


def b64url(data: bytes | dict | list) -> str:
    if isinstance(data, (dict, list)):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Users:
    """Makes fresh users in PostgreSQL and the local Cognito pool, with access tokens."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.cognito = aws.client(settings, "cognito-idp")
        self.pool_id = settings.cognito_user_pool_id
        self.client_id = settings.cognito_client_id
        self.pg = psycopg.connect(settings.connection_url, autocommit=True)
        self.lock = threading.Lock()

    def cognito_user(self, handle: str, verified: bool = True) -> tuple[str, str]:
        """A user of the pool (no PostgreSQL row): (email, sub)."""
        email = f"{handle}@example.test"
        created = self.cognito.admin_create_user(
            UserPoolId=self.pool_id, Username=email, MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": email},
                            {"Name": "email_verified", "Value": "true" if verified else "false"},
                            {"Name": "name", "Value": f"Test {handle}"},
                            {"Name": "preferred_username", "Value": handle}])
        self.cognito.admin_set_user_password(UserPoolId=self.pool_id, Username=email,
                                             Password=PASSWORD, Permanent=True)
        return email, {a["Name"]: a["Value"] for a in created["User"]["Attributes"]}["sub"]

    def sign_in(self, email: str, client_id: str | None = None) -> dict[str, str]:
        result = self.cognito.initiate_auth(ClientId=client_id or self.client_id,
                                            AuthFlow="USER_PASSWORD_AUTH",
                                            AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD})
        return result["AuthenticationResult"]

    def make(self, prefix: str = "u") -> User:
        handle = f"{prefix}{uuid.uuid4().hex[:10]}"
        email, sub = self.cognito_user(handle)
        with self.lock:
            row = self.pg.execute(
                "INSERT INTO public.users (display_name, handle, email, cognito_user_id) "
                "VALUES (%s, %s, %s, %s) RETURNING uuid::text",
                [f"Test {handle}", handle, email, sub]).fetchone()
        return User(row[0], handle, f"Test {handle}", email, self.sign_in(email)["AccessToken"])

    def seeded(self, api, handle: str) -> User:
        row = self.pg.execute("SELECT uuid::text, display_name, email FROM public.users "
                              "WHERE handle = %s", [handle]).fetchone()
        return User(row[0], handle, row[1], row[2], api.tokens[handle])

    def close(self) -> None:
        self.pg.close()


@pytest.fixture(scope="module")
def users(settings: Settings):
    made = Users(settings)
    yield made
    made.close()


@pytest.fixture(scope="module")
def seeded(api, users: Users) -> dict[str, User]:
    return {h: users.seeded(api, h) for h in ("andrewbrown", "bayko", "londo")}


@pytest.fixture(scope="module")
def seeded_group(seeded) -> str:
    """The seeded conversation of andrewbrown and bayko."""
    return layout.group_uuid_for(seeded["andrewbrown"].uuid, seeded["bayko"].uuid)


@pytest.fixture
def pair(api, users: Users) -> tuple[User, User, str]:
    """Two fresh users and the conversation the first started with the second."""
    a, b = users.make("pa"), users.make("pb")
    group = send(api, a, "first", to=b)["message_group_uuid"]
    return a, b, group


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
    expected = [{k: m[k] for k in ("uuid", "display_name", "handle", "message", "created_at")}
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


# -- forbidden: tokens --------------------------------------------------------------------------

MOTO_KID = "dummy"  # moto signs every pool's tokens with one key of this kid


def moto_private_key() -> dict[str, Any]:
    from moto.cognitoidp.models import load_resource

    return load_resource("cognitoidp/resources/jwks-private.json")


def claims_like(token: str, **changes: Any) -> dict[str, Any]:
    claims = jose_jwt.get_unverified_claims(token)
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, Any], key: Any = None, kid: str = MOTO_KID) -> str:
    return jose_jwt.encode(claims, key or moto_private_key(), algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def bad_tokens(api, seeded, users: Users, settings: Settings) -> dict[str, tuple[str, int, str]]:
    """name -> (Authorization header value, status, code)."""
    good = seeded["londo"].token
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    jwks = requests.get(f"{settings.aws_endpoint_url}/{settings.cognito_user_pool_id}"
                        "/.well-known/jwks.json", timeout=10).json()
    public_pem = jose_jwk.construct(jwks["keys"][0], "RS256").to_pem()
    header, payload, _ = good.split(".")
    hs_header = b64url({"alg": "HS256", "kid": MOTO_KID, "typ": "JWT"})
    hs256 = f"{hs_header}.{payload}." + b64url(
        hmac.new(public_pem, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest())
    alg_none = f"{b64url({'alg': 'none', 'kid': MOTO_KID, 'typ': 'JWT'})}.{payload}."
    other_iss = f"https://cognito-idp.{settings.aws_region}.amazonaws.com/{settings.aws_region}_other"
    tampered = f"{header}.{b64url(claims_like(good, sub=str(uuid.uuid4())))}.{good.split('.')[2]}"

    # Real tokens of another pool, of another app client of this pool, and an ID token.
    other_pool = users.cognito.create_user_pool(PoolName=f"other-{uuid.uuid4().hex[:8]}",
                                                UsernameAttributes=["email"])["UserPool"]["Id"]
    other_pool_client = users.cognito.create_user_pool_client(
        UserPoolId=other_pool, ClientName="other", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH",
                                                                      "ALLOW_REFRESH_TOKEN_AUTH"])
    users.cognito.admin_create_user(UserPoolId=other_pool, Username=seeded["londo"].email,
                                    MessageAction="SUPPRESS")
    users.cognito.admin_set_user_password(UserPoolId=other_pool, Username=seeded["londo"].email,
                                          Password=PASSWORD, Permanent=True)
    other_pool_token = users.cognito.initiate_auth(
        ClientId=other_pool_client["UserPoolClient"]["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": seeded["londo"].email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    other_client = users.cognito.create_user_pool_client(
        UserPoolId=settings.cognito_user_pool_id, ClientName=f"other-{uuid.uuid4().hex[:8]}",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    other_client_token = users.sign_in(seeded["londo"].email, other_client)["AccessToken"]
    id_token = users.sign_in(seeded["londo"].email)["IdToken"]
    # in Cognito, not in PostgreSQL, and not made there: its email is not verified
    email, _ = users.cognito_user(f"nopg{uuid.uuid4().hex[:8]}", verified=False)
    unknown_sub = users.sign_in(email)["AccessToken"]

    assert jose_jwt.get_unverified_claims(other_pool_token)["iss"].endswith(other_pool)
    assert jose_jwt.get_unverified_claims(other_client_token)["client_id"] == other_client
    assert jose_jwt.get_unverified_claims(id_token)["token_use"] == "id"
    return {
        "no token": ("", 401, "token_missing"),
        "basic scheme": ("Basic bG9uZG86cGFzc3dvcmQ=", 401, "token_malformed"),
        "bearer without token": ("Bearer", 401, "token_malformed"),
        "token without scheme": (good, 401, "token_malformed"),
        "not a jwt": ("Bearer not-a-jwt", 401, "token_malformed"),
        "garbage jwt": ("Bearer abc.def.ghi", 401, "token_malformed"),
        "expired": (f"Bearer {sign(claims_like(good, iat=now - 7200, exp=now - 3600))}",
                    401, "token_expired"),
        "another rsa key, moto's kid": (f"Bearer {sign(claims_like(good), other_pem)}",
                                        401, "token_invalid"),
        "another rsa key, unknown kid": (f"Bearer {sign(claims_like(good), other_pem, 'other-kid')}",
                                         401, "token_invalid"),
        "alg none": (f"Bearer {alg_none}", 401, "token_invalid"),
        "hs256 with the jwks public key": (f"Bearer {hs256}", 401, "token_invalid"),
        "tampered claims": (f"Bearer {tampered}", 401, "token_invalid"),
        "no expiry": (f"Bearer {sign(claims_like(good, exp=None))}", 401, "token_invalid"),
        "issuer of another pool (signed)": (f"Bearer {sign(claims_like(good, iss=other_iss))}",
                                            401, "token_invalid"),
        "token of another pool": (f"Bearer {other_pool_token}", 401, "token_invalid"),
        "token of another app client": (f"Bearer {other_client_token}", 401, "token_invalid"),
        "id token": (f"Bearer {id_token}", 401, "token_invalid"),
        "unknown sub": (f"Bearer {unknown_sub}", 403, "user_unknown"),
    }


BAD_TOKEN_CASES = ["no token", "basic scheme", "bearer without token", "token without scheme",
                   "not a jwt", "garbage jwt", "expired", "another rsa key, moto's kid",
                   "another rsa key, unknown kid", "alg none", "hs256 with the jwks public key",
                   "tampered claims", "no expiry", "issuer of another pool (signed)",
                   "token of another pool", "token of another app client", "id token",
                   "unknown sub"]


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
def test_bad_tokens_are_refused_and_nothing_is_acted_on(api, seeded, seeded_group, bad_tokens, case):
    authorization, status, code = bad_tokens[case]
    headers = {"Authorization": authorization} if authorization else {}
    andrew = seeded["andrewbrown"]
    before = messages(api, andrew, seeded_group, limit=5)
    for response in (
        get(api, "/api/message_groups", headers=headers),
        get(api, f"/api/messages/{seeded_group}", headers=headers),
        post(api, "/api/messages", headers={**headers, "Idempotency-Key": f"bad-{uuid.uuid4()}"},
             json={"message": f"not stored ({case})", "message_group_uuid": seeded_group}),
        post(api, "/api/messages", headers=headers,
             json={"message": f"not stored ({case})", "handle": "bayko"}),
    ):
        error(response, status, code)
        # the challenge of RFC 6750: an error code only when a token was sent
        expected = {"token_missing": "Bearer"}.get(code, 'Bearer error="invalid_token"')
        assert response.headers.get("WWW-Authenticate") == (expected if status == 401 else None)
    assert messages(api, andrew, seeded_group, limit=5) == before


def test_a_good_token_still_works_after_the_bad_ones(api, seeded, bad_tokens):
    for authorization, _, _ in bad_tokens.values():
        get(api, "/api/message_groups", headers={"Authorization": authorization} if authorization else {})
    assert get(api, "/api/message_groups", seeded["londo"]).status_code == 200


# -- forbidden: other people's conversations and cursors ------------------------------------------

def test_not_yours_and_does_not_exist_are_the_same_answer(api, seeded, users: Users):
    """A group's uuid derives from its two participants' public uuids: were "not yours" answered
    differently from "does not exist", anyone signed in could tell who talks to whom."""
    londo = seeded["londo"]
    a, b, c = users.make("wa"), users.make("wb"), users.make("wc")
    send(api, a, "we talk", to=b)
    talking, silent = layout.group_uuid_for(a.uuid, b.uuid), layout.group_uuid_for(a.uuid, c.uuid)

    def answer(response: requests.Response) -> tuple:
        return (response.status_code, response.content,
                {k: v for k, v in response.headers.items() if k.lower() not in ("date", "content-length")})

    for path in ("/api/messages/{}", "/api/messages/{}?limit=1"):
        assert answer(get(api, path.format(talking), londo)) == answer(get(api, path.format(silent), londo))
    bodies = [{"message": "hi", "message_group_uuid": g} for g in (talking, silent)]
    assert answer(post(api, "/api/messages", londo, json=bodies[0])) == \
        answer(post(api, "/api/messages", londo, json=bodies[1]))
    error(get(api, f"/api/messages/{talking}", londo), 404, "message_group_not_found")


def test_foreign_conversations_cannot_be_read_or_written(api, seeded, seeded_group):
    andrew, londo = seeded["andrewbrown"], seeded["londo"]
    before = messages(api, andrew, seeded_group)
    error(get(api, f"/api/messages/{seeded_group}", londo), 404, "message_group_not_found")
    error(get(api, f"/api/messages/{seeded_group.upper()}?limit=1", londo), 404, "message_group_not_found")
    for headers in ({}, {"Idempotency-Key": f"foreign-{uuid.uuid4()}"}):
        error(post(api, "/api/messages", londo, headers=headers,
                   json={"message": "let me in", "message_group_uuid": seeded_group}),
              404, "message_group_not_found")
    assert messages(api, andrew, seeded_group) == before
    assert seeded_group not in [g["uuid"] for g in groups(api, londo)]
    # Unknown conversations and path segments that are not uuids.
    missing = str(uuid.uuid4())
    error(get(api, f"/api/messages/{missing}", londo), 404, "message_group_not_found")
    error(post(api, "/api/messages", londo, json={"message": "x", "message_group_uuid": missing}),
          404, "message_group_not_found")
    for segment in ("not-a-uuid", missing.replace("-", ""), f"{{{missing}}}", "%20" + missing):
        error(get(api, f"/api/messages/{segment}", londo), 404, "message_group_not_found")


def link_of(response: requests.Response) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    assert link.startswith("<") and link.endswith('>; rel="next"'), link
    return link[1:link.index(">")]


def cursor_of(url: str) -> str:
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(url).query)["cursor"][0]


def test_foreign_altered_and_forged_cursors_are_refused(api, seeded, seeded_group, users: Users):
    andrew, bayko = seeded["andrewbrown"], seeded["bayko"]
    owner, first, second = users.make("co"), users.make("c1"), users.make("c2")
    send(api, owner, "one", to=first)
    other_group = send(api, owner, "two", to=second)["message_group_uuid"]
    send(api, owner, "three", group=other_group)

    groups_next = link_of(get(api, "/api/message_groups?limit=1", owner))
    seeded_next = link_of(get(api, f"/api/messages/{seeded_group}?limit=2", bayko))
    other_next = link_of(get(api, f"/api/messages/{other_group}?limit=1", owner))
    assert groups_next and seeded_next and other_next
    # The genuine cursors work for their own list and caller...
    assert get(api, groups_next, owner).status_code == 200
    assert get(api, seeded_next, bayko).status_code == 200
    # ...and for nobody and nothing else.
    foreign = [
        (f"/api/message_groups?cursor={cursor_of(groups_next)}", first),  # another caller's B
        (f"/api/message_groups?cursor={cursor_of(groups_next)}", andrew),
        (f"/api/messages/{seeded_group}?cursor={cursor_of(seeded_next)}", andrew),  # bayko's, same group
        (f"/api/messages/{seeded_group}?cursor={cursor_of(other_next)}", andrew),  # another group's
        (f"/api/messages/{other_group}?cursor={cursor_of(seeded_next)}", owner),
        (f"/api/message_groups?cursor={cursor_of(other_next)}", owner),  # A's cursor on B
        (f"/api/messages/{other_group}?cursor={cursor_of(groups_next)}", owner),  # B's cursor on A
    ]
    body, mac = cursor_of(other_next).rsplit(".", 1)
    raw = base64.urlsafe_b64decode(body.lstrip(".") + "=" * (-len(body.lstrip(".")) % 4))
    # itsdangerous compresses a payload when that is shorter, and marks it with a leading "."
    payload = json.loads(zlib.decompress(raw) if body.startswith(".") else raw)
    forged_scope = b64url([f"A:{andrew.uuid}:{seeded_group}", payload[1]])  # [scope, position]
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    altered = [f"{forged_scope}.{mac}", f"{flipped}.{mac}", f"{body}.{mac[:-1]}",
               f"{body}.{'A' * len(mac)}", f"{body}.{'é' * len(mac)}", body, "", "x" * 600,
               f"{body}.{mac}.{mac}", "%%%.***"]
    for cursor in altered:
        foreign.append((f"/api/messages/{other_group}?cursor={requests.utils.quote(cursor)}", owner))
        foreign.append((f"/api/message_groups?cursor={requests.utils.quote(cursor)}", owner))
    for path, user in foreign:
        error(get(api, path, user), 400, "cursor_invalid")


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


def test_cors_exposes_link_and_answers_preflight_without_a_token(api, seeded, seeded_group,
                                                                settings: Settings):
    origin = settings.frontend_url
    assert origin == "http://localhost:3000"
    andrew = seeded["andrewbrown"]
    response = get(api, f"/api/messages/{seeded_group}?limit=2", andrew, headers={"Origin": origin})
    assert response.headers["Access-Control-Allow-Origin"] == origin
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"link", "retry-after", "x-error-detail"} <= exposed
    assert link_of(response)
    # Errors carry CORS headers too, so that the frontend can read their codes.
    refused = get(api, "/api/message_groups", headers={"Origin": origin})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == origin

    for path, method in (("/api/messages", "POST"), ("/api/message_groups", "GET"),
                         (f"/api/messages/{seeded_group}", "GET")):
        preflight = api.session.options(api.url + path, timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"})
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type"} <= allowed
        methods = {m.strip() for m in preflight.headers["Access-Control-Allow-Methods"].split(",")}
        assert {"GET", "POST"} <= methods
    stranger = get(api, "/api/message_groups", andrew, headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_an_unknown_route_answers_its_preflight_and_then_a_readable_404(api, settings: Settings):
    """A frontend calling a route this backend does not have sees our 404 and its code, not a
    CORS error: the preflight is answered as for any route, and the 404 carries CORS headers."""
    origin = settings.frontend_url
    preflight = api.session.options(api.url + "/api/no-such-area/items", timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    missing = get(api, "/api/no-such-area/items", headers={"Origin": origin})
    assert (missing.status_code, missing.json()) == (404, ["not_found"])
    assert missing.headers["Access-Control-Allow-Origin"] == origin
    # ...and no other origin is let in that way
    foreign = api.session.options(api.url + "/api/no-such-area/items", timeout=10, headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in foreign.headers


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


# -- configuration: refusing to start half-configured; the Link header's host ---------------------

@pytest.mark.parametrize("unset, changed, says", [
    ("CURSOR_SECRET", {}, "without CURSOR_SECRET"),
    ("AWS_COGNITO_USER_POOL_ID", {}, "without AWS_COGNITO_USER_POOL_ID"),
    ("AWS_COGNITO_USER_POOL_CLIENT_ID", {}, "without AWS_COGNITO_USER_POOL_CLIENT_ID"),
    (None, {"DB_TIMEOUT_SECONDS": "x"}, ": DB_TIMEOUT_SECONDS must be a number of at least 0.1, not 'x'"),
])
def test_the_api_refuses_to_start_in_aws_half_configured(unset, changed, says):
    """Without an endpoint override (AWS), gunicorn stops at once with one line naming what is
    missing or unusable, instead of serving 401s or cursors no other process accepts."""
    import subprocess
    import sys

    from devstack import free_port

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(config.ROOT), "AWS_DEFAULT_REGION": "us-east-1",
           "CURSOR_SECRET": "s", "AWS_COGNITO_USER_POOL_ID": "us-east-1_x",
           "AWS_COGNITO_USER_POOL_CLIENT_ID": "c", "CONNECTION_URL": "postgresql://127.0.0.1:1/x",
           **changed}
    env.pop(unset, None)
    # as the image runs it (Dockerfile), with one worker: when two fail to boot at once, gunicorn's
    # master sometimes adds a traceback of its own (HaltServer raised again while it stops)
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
                             "--workers", "1", "--bind", f"127.0.0.1:{free_port()}",
                             "app:create_app()"],
                            cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "refusing to start" in line]
    assert len(lines) == 1 and lines[0].endswith(says), result.stderr
    assert "Traceback" not in result.stderr


def test_the_link_header_cannot_be_steered_by_the_host_header(settings: Settings, seeded, seeded_group):
    from app import create_app

    andrew = seeded["andrewbrown"]
    path = f"/api/messages/{seeded_group}?limit=2"
    forged = {**andrew.auth, "Host": "evil.example", "X-Forwarded-Host": "evil.example",
              "X-Forwarded-Proto": "https"}

    def link(app_settings: Settings, headers: dict[str, str]) -> str:
        app = create_app(app_settings)
        try:
            response = app.test_client().get(path, headers=headers)
        finally:
            app.extensions["parts"].db.close()
        assert response.status_code == 200
        return response.headers["Link"]

    # not configured: a reference relative to the request, whatever Host says
    assert link(settings, forged).startswith(f"</api/messages/{seeded_group}?limit=2&cursor=")
    # a public URL: always that
    public = settings.with_(public_url="https://api.cruddur.example")
    assert link(public, forged).startswith(f"<https://api.cruddur.example/api/messages/{seeded_group}?")
    # behind one trusted proxy: what that proxy forwarded (the last value), not what the client sent
    proxied = settings.with_(trusted_proxy_hops=1)
    behind = {**andrew.auth, "Host": "internal:4567", "X-Forwarded-Proto": "https, https",
              "X-Forwarded-Host": "evil.example, cruddur.example"}
    assert link(proxied, behind).startswith(f"<https://cruddur.example/api/messages/{seeded_group}?")


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
