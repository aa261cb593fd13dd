"""What the API refuses through HTTP: bad tokens, other people's conversations and cursors, CORS
for foreign origins and unknown routes, a Link header steered by the Host header."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
import zlib
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk as jose_jwk
from jose import jwt as jose_jwt

from lib import config
from lib.conversations import layout
from lib.config import Settings

from tests.http_api import (PASSWORD, Users, b64url, cursor_of, error, get, groups, link_of, messages, post,
                            send)


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
