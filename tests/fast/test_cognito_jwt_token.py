"""lib/cognito_jwt_token.py with an injected JWKS fetch and clock: what is accepted, what is refused,
and how often the JWKS is fetched."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt

from app import status_of
from lib import metrics
from lib.cognito_jwt_token import (KEYS_MAX_AGE_SECONDS, REFETCH_INTERVAL_SECONDS,
                                   RETRY_AFTER_FAILURE_SECONDS, CognitoJwtToken, TokenError,
                                   issuer_url, jwks_url)
from lib.config import Settings
from domain.errors import Unauthenticated, Unavailable


POOL = "us-east-1_TestPool"
CLIENT = "test-client-id"
SETTINGS = Settings(aws_region="us-east-1", cognito_user_pool_id=POOL, cognito_client_id=CLIENT,
                    aws_endpoint_url="http://127.0.0.1:4566")
ISSUER = f"https://cognito-idp.us-east-1.amazonaws.com/{POOL}"


def new_key() -> tuple[Any, dict[str, Any]]:
    """(private key, public JWK without kid)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = jwk.construct(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), "RS256").to_dict()
    return jwk.construct(pem, "RS256"), public  # constructed once: parsing a PEM is slow


KEY_A, PUBLIC_A = new_key()
KEY_B, PUBLIC_B = new_key()


class Jwks:
    """A fake JWKS endpoint that counts its fetches."""

    def __init__(self, *keys: tuple[str, dict[str, Any]]):
        self.keys = list(keys)
        self.fetches: list[str] = []
        self.fail = False
        self.lock = threading.Lock()

    def __call__(self, url: str) -> dict[str, Any]:
        with self.lock:
            self.fetches.append(url)
        time.sleep(0.01)  # let concurrent callers pile up behind a fetch in progress
        if self.fail:
            raise OSError("connection refused")
        return {"keys": [{**public, "kid": kid, "alg": "RS256", "use": "sig"} for kid, public in self.keys]}


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "0d1c6d4c-6a8b-4b8e-9e0d-1f2a3b4c5d6e", "iss": ISSUER, "client_id": CLIENT,
            "token_use": "access", "iat": now, "auth_time": now, "exp": now + 3600,
            "username": "someone", "jti": "x"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(kid: str = "a", key: Any = KEY_A, **changes: Any) -> str:
    return jwt.encode(claims(**changes), key, algorithm="RS256", headers={"kid": kid})


def b64url(data: bytes | dict) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.fixture
def jwks() -> Jwks:
    return Jwks(("a", PUBLIC_A))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(jwks: Jwks, clock: Clock) -> CognitoJwtToken:
    return CognitoJwtToken(SETTINGS, fetch=jwks, clock=clock)


def refused(verifier: CognitoJwtToken, value: str) -> str:
    with pytest.raises(TokenError) as raised:
        verifier.verify(value)
    assert status_of(raised.value) == 401
    return raised.value.codes[0]


# -- where the keys and the issuer are ---------------------------------------------------------

def test_urls_follow_the_endpoint_override_locally_and_cognito_in_aws():
    assert issuer_url(SETTINGS) == ISSUER
    assert jwks_url(SETTINGS) == f"http://127.0.0.1:4566/{POOL}/.well-known/jwks.json"
    aws = SETTINGS.with_(aws_endpoint_url=None)
    assert jwks_url(aws) == f"{ISSUER}/.well-known/jwks.json"
    assert issuer_url(aws) == ISSUER  # the issuer is Cognito's either way


# -- fetching the JWKS ---------------------------------------------------------------------------

def test_jwks_is_fetched_once_and_cached_until_it_is_old(verifier, jwks, clock):
    before = metrics.snapshot().get("jwks_fetches", 0)
    for _ in range(5):
        assert verifier.verify(token())["sub"] == claims()["sub"]
        clock.now += (KEYS_MAX_AGE_SECONDS - 1) / 5  # a known kid needs no fetch meanwhile
    assert jwks.fetches == [f"http://127.0.0.1:4566/{POOL}/.well-known/jwks.json"]
    assert metrics.snapshot().get("jwks_fetches", 0) - before == 1
    clock.now += 1
    verifier.verify(token())
    assert len(jwks.fetches) == 2


def test_a_key_removed_from_the_pool_is_forgotten_with_its_tokens(verifier, jwks, clock):
    """Issue 24, item 4: the key set is fetched again on a schedule and replaces the old one, so a
    removed key (and every remembered token it signed) stops being trusted within
    KEYS_MAX_AGE_SECONDS, without a restart."""
    old = token()
    verifier.verify(old)
    jwks.keys = [("b", PUBLIC_B)]  # the pool rotated: key a is gone
    clock.now += KEYS_MAX_AGE_SECONDS - 1
    assert verifier.verify(old)["sub"] == claims()["sub"]  # not refetched yet
    clock.now += 1
    assert refused(verifier, old) == "token_invalid"
    assert refused(verifier, token()) == "token_invalid"
    assert verifier.verify(token(kid="b", key=KEY_B))["sub"] == claims()["sub"]


def test_unknown_kid_refetches_at_most_once_a_minute(verifier, jwks, clock):
    verifier.verify(token())
    assert len(jwks.fetches) == 1
    clock.now += REFETCH_INTERVAL_SECONDS + 1
    for i in range(20):  # a flood of unknown kids within a minute: one refetch
        assert refused(verifier, token(kid=f"forged-{i}")) == "token_invalid"
        clock.now += 1
    assert len(jwks.fetches) == 2
    clock.now += REFETCH_INTERVAL_SECONDS
    assert refused(verifier, token(kid="forged-again")) == "token_invalid"
    assert refused(verifier, token(kid="forged-again")) == "token_invalid"
    assert len(jwks.fetches) == 3
    verifier.verify(token())  # the known key still works, without a fetch
    assert len(jwks.fetches) == 3


def test_a_rotated_key_is_picked_up_by_the_next_allowed_refetch(verifier, jwks, clock):
    verifier.verify(token())
    jwks.keys.append(("b", PUBLIC_B))
    rotated = token(kid="b", key=KEY_B)
    assert refused(verifier, rotated) == "token_invalid"  # fetched less than a minute ago
    clock.now += REFETCH_INTERVAL_SECONDS
    assert verifier.verify(rotated)["sub"] == claims()["sub"]
    assert len(jwks.fetches) == 2
    verifier.verify(rotated)
    verifier.verify(token())
    assert len(jwks.fetches) == 2


def test_concurrent_unknown_kids_make_one_fetch(verifier, jwks):
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def verify(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            verifier.verify(token(kid=f"unknown-{i}"))
            outcomes.append("accepted")
        except TokenError as error:
            outcomes.append(error.codes[0])

    threads = [threading.Thread(target=verify, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert outcomes == ["token_invalid"] * 8
    assert len(jwks.fetches) == 1


def test_an_unreachable_jwks_is_503_not_401_and_retried_after_a_few_seconds(verifier, jwks, clock):
    """Cognito unreachable is not the client's fault: 503, and nobody is locked out for a minute."""
    jwks.fail = True
    for _ in range(5):
        with pytest.raises(Unavailable) as error:
            verifier.verify(token())
        assert error.value.codes == ["auth_unavailable"] and error.value.retry_after == RETRY_AFTER_FAILURE_SECONDS
    assert len(jwks.fetches) == 1  # a flood of requests is not a flood of fetches
    jwks.fail = False
    clock.now += RETRY_AFTER_FAILURE_SECONDS
    assert verifier.verify(token())["token_use"] == "access"
    assert len(jwks.fetches) == 2
    assert RETRY_AFTER_FAILURE_SECONDS < REFETCH_INTERVAL_SECONDS


def test_a_malformed_jwks_document_is_a_failed_fetch_and_a_set_without_usable_keys_refuses(jwks, clock):
    verifier = CognitoJwtToken(SETTINGS, fetch=lambda url: {"keys": "nonsense"}, clock=clock)
    with pytest.raises(Unavailable):  # no key set at all yet: nothing can be judged
        verifier.verify(token())
    verifier = CognitoJwtToken(SETTINGS, fetch=lambda url: {"keys": [{"kty": "RSA"}]}, clock=clock)
    assert refused(verifier, token()) == "token_invalid"


def test_an_unknown_kid_is_401_even_while_the_key_set_cannot_be_fetched(verifier, jwks, clock):
    """An unknown key is not an outage: once a key set is held, a kid outside it is refused (401)
    whether or not the pool's keys can be fetched again, and good tokens keep working."""
    assert verifier.verify(token())["token_use"] == "access"
    jwks.fail = True
    for i in range(3):
        clock.now += REFETCH_INTERVAL_SECONDS  # each one may refetch, and the fetch fails
        assert refused(verifier, token(kid=f"forged-{i}")) == "token_invalid"
    assert verifier.verify(token())["token_use"] == "access"


@pytest.mark.parametrize("answer", [{}, {"keys": None}, {"keys": "nonsense"}, ["not", "an", "object"]])
def test_a_jwks_answer_without_keys_keeps_the_keys_held(verifier, jwks, clock, answer):
    assert verifier.verify(token())["token_use"] == "access"
    fetches = len(jwks.fetches)
    verifier._fetch = lambda url: (jwks.fetches.append(url), answer)[1]
    clock.now += KEYS_MAX_AGE_SECONDS  # the set is old: fetched again, and the answer is empty
    assert verifier.verify(token(jti="another"))["token_use"] == "access"
    assert len(jwks.fetches) == fetches + 1
    # a failed fetch: tried again after a few seconds, not after the full age
    clock.now += RETRY_AFTER_FAILURE_SECONDS
    verifier.verify(token(jti="a third"))
    assert len(jwks.fetches) == fetches + 2


# -- what is accepted and what is not -------------------------------------------------------------

def test_a_valid_access_token_gives_its_claims(verifier):
    got = verifier.verify(token(username="londo"))
    assert (got["sub"], got["client_id"], got["token_use"], got["username"]) == \
        (claims()["sub"], CLIENT, "access", "londo")


@pytest.mark.parametrize("value", [
    "", "abc", "a.b", "a.b.c.d", "x" * 9000, "%%%.%%%.%%%", "....",
    b64url(b"not json") + ".e30.sig",
    b64url(b"[1, 2]") + ".e30.sig",
])
def test_malformed_tokens(verifier, jwks, value):
    assert refused(verifier, value) in {"token_malformed", "token_invalid"}
    assert jwks.fetches == []  # nothing to look up for these


def test_expired_token(verifier):
    now = int(time.time())
    assert refused(verifier, token(iat=now - 7200, exp=now - 3600)) == "token_expired"


def test_a_verified_token_is_checked_once_until_its_exp(jwks, monkeypatch):
    """The same token again is answered from memory (no signature check) until its exp, then
    refused as expired; a refused token is checked again every time."""
    from lib import cognito_jwt_token

    checks = []
    real_decode = cognito_jwt_token.jwt.decode
    monkeypatch.setattr(cognito_jwt_token.jwt, "decode",
                        lambda *a, **k: checks.append(1) or real_decode(*a, **k))
    clock = Clock(time.time())
    verifier = CognitoJwtToken(SETTINGS, fetch=jwks, clock=clock)
    good = token(exp=int(clock.now) + 60)
    assert verifier.verify(good) == verifier.verify(good) == verifier.verify(good)
    assert len(checks) == 1
    clock.now += 61
    assert refused(verifier, good) == "token_expired"
    assert len(checks) == 1
    forged = token(key=KEY_B)
    assert refused(verifier, forged) == refused(verifier, forged) == "token_invalid"
    assert len(checks) == 3


@pytest.mark.parametrize("changes", [
    {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"},
    {"iss": None},
    {"token_use": "id"},
    {"token_use": None},
    {"client_id": "another-client"},
    {"client_id": None},
    {"sub": None},
    {"sub": 42},
    {"exp": None},
    {"exp": "tomorrow"},
    {"nbf": int(time.time()) + 3600},
])
def test_tokens_with_wrong_or_missing_claims(verifier, changes):
    assert refused(verifier, token(**changes)) == "token_invalid"


def test_tokens_signed_otherwise(verifier, jwks):
    good = token()
    header, payload, signature = good.split(".")
    # another key under the pool's kid
    assert refused(verifier, token(key=KEY_B)) == "token_invalid"
    # a changed payload under the original signature
    changed = b64url({**claims(), "sub": "someone-else"})
    assert refused(verifier, f"{header}.{changed}.{signature}") == "token_invalid"
    # alg none, with and without a signature
    none = b64url({"alg": "none", "kid": "a", "typ": "JWT"})
    assert refused(verifier, f"{none}.{payload}.") == "token_invalid"
    assert refused(verifier, f"{none}.{payload}.{signature}") == "token_invalid"
    # HS256 keyed with the public key (the classic algorithm confusion)
    pem = jwk.construct({**PUBLIC_A}, "RS256").to_pem()
    hs = b64url({"alg": "HS256", "kid": "a", "typ": "JWT"})
    mac = hmac.new(pem, f"{hs}.{payload}".encode(), hashlib.sha256).digest()
    assert refused(verifier, f"{hs}.{payload}.{b64url(mac)}") == "token_invalid"
    # RS512 and a header without kid
    assert refused(verifier, jwt.encode(claims(), KEY_A, algorithm="RS512",
                                        headers={"kid": "a"})) == "token_invalid"
    assert refused(verifier, jwt.encode(claims(), KEY_A, algorithm="RS256")) == "token_invalid"
    assert refused(verifier, f"{b64url({'alg': 'RS256', 'kid': 7})}.{payload}.{signature}") == \
        "token_invalid"
    assert len(jwks.fetches) == 1  # the one fetch for kid "a"


def test_no_app_client_configured_accepts_nothing(jwks, clock):
    verifier = CognitoJwtToken(SETTINGS.with_(cognito_client_id=None), fetch=jwks, clock=clock)
    assert refused(verifier, token()) == "token_invalid"


# -- revocation: disabled, deleted or signed-out users ----------------------------------------

class Pool:
    """A fake user pool's GetUser: refuses revoked tokens, or cannot be reached."""

    def __init__(self):
        self.revoked: set[str] = set()
        self.down = False
        self.asked: list[str] = []

    def __call__(self, value: str) -> None:
        self.asked.append(value)
        if self.down:
            raise Unavailable("auth_unavailable", detail="unreachable", retry_after=5)
        if value in self.revoked:
            raise Unauthenticated("token_invalid", detail="revoked")


RECHECK = SETTINGS.token_recheck_seconds


def test_a_revoked_user_loses_access_within_the_recheck_time(jwks):
    clock, pool = Clock(time.time()), Pool()
    verifier = CognitoJwtToken(SETTINGS, fetch=jwks, clock=clock, still_valid=pool)
    good = token(iat=int(clock.now))
    for _ in range(3):
        verifier.verify(good)
    assert pool.asked == []  # issued just now: nothing to ask yet
    pool.revoked.add(good)
    clock.now += RECHECK - 1
    verifier.verify(good)  # within the bound the operator chose
    clock.now += 1
    assert refused(verifier, good) == "token_revoked"
    assert refused(verifier, good) == "token_revoked"  # not remembered: asked again
    assert len(pool.asked) == 2


def test_a_token_older_than_the_recheck_time_is_asked_about_at_first_sight_then_once_a_period(jwks):
    clock, pool = Clock(time.time()), Pool()
    verifier = CognitoJwtToken(SETTINGS, fetch=jwks, clock=clock, still_valid=pool)
    old = token(iat=int(clock.now - RECHECK - 10))
    verifier.verify(old)
    verifier.verify(old)
    assert len(pool.asked) == 1
    clock.now += RECHECK
    verifier.verify(old)
    assert len(pool.asked) == 2


def test_an_unreachable_pool_trusts_a_recent_check_then_is_503(jwks):
    clock, pool = Clock(time.time()), Pool()
    verifier = CognitoJwtToken(SETTINGS, fetch=jwks, clock=clock, still_valid=pool)
    good = token(iat=int(clock.now))
    verifier.verify(good)
    pool.down = True
    clock.now += RECHECK
    verifier.verify(good)  # checked (at issue) less than twice the period ago
    verifier.verify(good)  # and the pool is not asked again at once: no request waits on it
    assert len(pool.asked) == 1
    clock.now += RETRY_AFTER_FAILURE_SECONDS
    verifier.verify(good)
    assert len(pool.asked) == 2
    clock.now += RECHECK
    with pytest.raises(Unavailable):
        verifier.verify(good)
    pool.down = False
    with pytest.raises(Unavailable):  # not asked again for a few seconds after a failure
        verifier.verify(good)
    clock.now += RETRY_AFTER_FAILURE_SECONDS
    verifier.verify(good)


def test_no_recheck_time_never_asks(jwks):
    clock, pool = Clock(time.time()), Pool()
    verifier = CognitoJwtToken(SETTINGS.with_(token_recheck_seconds=0), fetch=jwks, clock=clock,
                               still_valid=pool)
    old = token(iat=int(clock.now - 3000))
    verifier.verify(old)
    assert pool.asked == []


# -- how long a live stream may trust a token ---------------------------------------------------

def test_a_stream_is_trusted_for_at_most_the_recheck_time_and_asks_the_pool_when_half_is_gone(jwks):
    clock, pool = Clock(time.time()), Pool()
    verifier = CognitoJwtToken(SETTINGS, fetch=jwks, clock=clock, still_valid=pool)
    good = token(iat=int(clock.now))
    _, until = verifier.verify_for_a_while(good)
    assert until == int(clock.now) + RECHECK and pool.asked == []  # issued just now
    clock.now += RECHECK / 2  # half the period gone: asked now, so the next stream has a full one
    _, until = verifier.verify_for_a_while(good)
    assert pool.asked == [good] and until == clock.now + RECHECK
    pool.revoked.add(good)
    clock.now += RECHECK / 2
    with pytest.raises(TokenError) as raised:
        verifier.verify_for_a_while(good)
    assert raised.value.codes == ["token_revoked"]


def test_a_stream_never_outlives_its_token(jwks):
    clock, pool = Clock(time.time()), Pool()
    verifier = CognitoJwtToken(SETTINGS, fetch=jwks, clock=clock, still_valid=pool)
    short = token(iat=int(clock.now), exp=int(clock.now) + 30)
    assert verifier.verify_for_a_while(short)[1] == int(clock.now) + 30
    unchecked = CognitoJwtToken(SETTINGS.with_(token_recheck_seconds=0), fetch=jwks, clock=clock)
    assert unchecked.verify_for_a_while(short)[1] == int(clock.now) + 30


def test_a_stream_is_not_opened_on_trust_that_has_run_out_while_the_pool_is_down(jwks):
    """Requests are served on a check up to twice the period old while the pool is down; a stream
    would then start with its trust already spent: 503 instead, until the pool answers."""
    clock, pool = Clock(time.time()), Pool()
    verifier = CognitoJwtToken(SETTINGS, fetch=jwks, clock=clock, still_valid=pool)
    good = token(iat=int(clock.now))
    verifier.verify(good)
    pool.down = True
    clock.now += RECHECK + 1
    verifier.verify(good)  # a request: still trusted, the pool being down
    with pytest.raises(Unavailable):
        verifier.verify_for_a_while(good)
    pool.down = False
    clock.now += RETRY_AFTER_FAILURE_SECONDS
    assert verifier.verify_for_a_while(good)[1] == clock.now + RECHECK
