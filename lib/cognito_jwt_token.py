"""Verifying Cognito access tokens with python-jose against the user pool's JWKS.

A token is accepted only with a valid RS256 signature by a key of the pool's JWKS, unexpired,
`iss` of the configured pool, `token_use` = access and `client_id` of the configured app client.

The key set is fetched on first use and again every KEYS_MAX_AGE_SECONDS, replacing the old one:
a key the pool has removed is forgotten within that time, and so are the tokens it signed. An
unknown `kid` refetches it sooner, at most once a minute, so a flood of forged `kid`s cannot
turn into a flood of fetches. A token with a `kid` that is not in the set held is refused (401),
also while the set cannot be fetched again (before any set was fetched, no token can be judged:
503); an answer without a list of keys is a failed fetch and leaves the keys held as they were.

A token that passed is remembered (by its exact string, up to VERIFIED_CACHE_SIZE of them) until
its `exp`: a client sends the same token with every request for up to an hour, and checking its
RSA signature and claims again each time is most of the CPU an authenticated request costs. A
signature cannot be revoked, but a user can be: disabled, deleted, or signed out everywhere. So a
remembered token is trusted for TOKEN_RECHECK_SECONDS (Settings, default 5 minutes) from its
issue or its last check, then the pool is asked again (`still_valid`: GetUser with the token,
which Cognito refuses for such a user) before it is used: a revoked user loses access within that
time, at one GetUser per active token and process every TOKEN_RECHECK_SECONDS. While the pool
cannot be asked, a token checked within twice that time is still trusted; after it, 503.
Refused tokens are not remembered: they cost a full check each time.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError

from lib import metrics
from lib.cache import Cache
from lib.config import Settings
from domain.errors import Unauthenticated, Unavailable

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
# The key set is fetched again after this long, whatever the tokens' kids.
KEYS_MAX_AGE_SECONDS = 900.0
REFETCH_INTERVAL_SECONDS = 60.0
# After a failed fetch (Cognito unreachable), the next try comes sooner than a minute.
RETRY_AFTER_FAILURE_SECONDS = 5.0
MAX_TOKEN_LENGTH = 8192
VERIFIED_CACHE_SIZE = 10_000
# Cognito's access tokens live at most a day; entries go by then, and each is checked against its
# own exp on every use.
VERIFIED_CACHE_SECONDS = 24 * 3600


class TokenError(Unauthenticated):
    """A missing, malformed, expired, forged or foreign token: 401."""


@dataclass
class _Verified:
    claims: dict[str, Any]
    kid: str
    checked_at: float  # when the pool last said its user may act (at first: the token's issue)
    next_ask: float = 0.0  # not before: the pool could not be asked a moment ago


def issuer_url(settings: Settings) -> str:
    # moto issues tokens with the same issuer as AWS, so this holds locally too.
    return f"https://cognito-idp.{settings.aws_region}.amazonaws.com/{settings.cognito_user_pool_id}"


def jwks_url(settings: Settings) -> str:
    """Cognito's JWKS in AWS; moto serves it under the endpoint override locally."""
    endpoint = settings.endpoint_for("cognito-idp")
    if endpoint:
        base = f"{endpoint.rstrip('/')}/{settings.cognito_user_pool_id}"
    else:
        base = issuer_url(settings)
    return f"{base}/.well-known/jwks.json"


def fetch_url(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.load(response)


class CognitoJwtToken:
    """Verifies access tokens of one pool and app client. Thread-safe; one per app."""

    def __init__(self, settings: Settings, fetch: Callable[[str], dict[str, Any]] = fetch_url,
                 clock: Callable[[], float] = time.time,
                 still_valid: Callable[[str], Any] | None = None):
        """`still_valid(token)` raises Unauthenticated when the token's user may no longer act
        (Unavailable when the pool cannot say); None: tokens are trusted until they expire."""
        self.issuer = issuer_url(settings)
        self._still_valid = still_valid
        self._recheck = settings.token_recheck_seconds
        self.client_id = settings.cognito_client_id
        self.url = jwks_url(settings)
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._failed = False
        self._fetched_ok_at: float | None = None  # the last fetch that gave a key set
        self._lock = threading.Lock()
        self._verified: Cache[_Verified] = Cache(VERIFIED_CACHE_SIZE, VERIFIED_CACHE_SECONDS)

    def _keys_stale(self) -> bool:
        # after a failed fetch the set held is used meanwhile, and asked for again soon
        age = RETRY_AFTER_FAILURE_SECONDS if self._failed else KEYS_MAX_AGE_SECONDS
        return self._fetched_at is not None and self._clock() - self._fetched_at >= age

    def _refresh(self, interval: float = REFETCH_INTERVAL_SECONDS) -> None:
        with self._lock:
            now = self._clock()
            interval = RETRY_AFTER_FAILURE_SECONDS if self._failed else interval
            if self._fetched_at is not None and now - self._fetched_at < interval:
                return
            self._fetched_at = now
            metrics.count("jwks_fetches")
            try:
                document = self._fetch(self.url)
            except (OSError, ValueError) as error:
                # Unreachable, or not JSON: we cannot tell a good token from a bad one.
                log.warning("could not fetch the JWKS from %s: %s", self.url, error)
                self._failed = True
                return
            keys = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(keys, list):
                # a broken answer (a proxy's page, an empty object) is a failed fetch: the keys
                # held are kept, and the next try comes soon
                log.warning("the JWKS from %s has no list of keys: the keys held are kept", self.url)
                self._failed = True
                return
            self._failed = False
            self._fetched_ok_at = now
            self._keys = {k["kid"]: k for k in keys if isinstance(k, dict) and "kid" in k}

    def _key(self, kid: str) -> dict[str, Any]:
        if kid not in self._keys:
            self._refresh()
        elif self._keys_stale():
            self._refresh(KEYS_MAX_AGE_SECONDS)
        key = self._keys.get(kid)
        if key is None:
            if self._failed and self._fetched_ok_at is None:
                # no key set yet and the pool cannot give one: no token can be judged (an outage)
                raise Unavailable("auth_unavailable", detail="the user pool's keys cannot be fetched",
                                  retry_after=int(RETRY_AFTER_FAILURE_SECONDS))
            # With a key set held, also while it cannot be fetched again: a kid the pool never
            # showed us is not an outage, and a flood of forged kids must not make the API look down.
            raise TokenError("token_invalid", detail="unknown signing key")
        return key

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or TokenError."""
        known = self._verified.get(token)
        if known is not None and self._keys_stale():
            self._refresh(KEYS_MAX_AGE_SECONDS)
        if known is not None and known.kid not in self._keys:
            self._verified.pop(token)  # its key was removed from the pool's set: check it anew
            known = None
        if known is None:
            claims, kid = self._check(token)
            issued = claims.get("iat")
            known = _Verified(claims, kid, float(issued) if isinstance(issued, (int, float)) else 0.0)
            self._verified.put(token, known)
        if known.claims["exp"] <= self._clock():
            raise TokenError("token_expired", detail="the token has expired")
        self._ask_the_pool(token, known)
        return known.claims

    def verify_for_a_while(self, token: str) -> tuple[dict[str, Any], float]:
        """For what outlives a request (a live-event stream): the token's claims, and until when
        its user's access may be trusted without asking the pool again: the token's expiry, or
        TOKEN_RECHECK_SECONDS after the pool last said the user may act, whichever comes first.
        The pool is asked now unless it answered within the last half period, so what this grants
        lasts at least half a period (when the pool answers), and a revoked user's stream ends
        within TOKEN_RECHECK_SECONDS, as their requests do."""
        claims = self.verify(token)
        expires = float(claims["exp"])
        if self._still_valid is None or not self._recheck:
            return claims, expires
        now = self._clock()
        # forgotten meanwhile (a full cache): as if never checked, so the pool is asked now
        known = self._verified.get(token) or _Verified(claims, "", now - self._recheck)
        # asked again once half the period is gone; trusted while the pool is down only as long as
        # the last answer is less than a period old
        self._ask_the_pool(token, known, self._recheck / 2)
        return claims, min(expires, known.checked_at + self._recheck)

    def _ask_the_pool(self, token: str, known: _Verified, period: float | None = None) -> None:
        """Whether the token's user may still act, asked of the pool once every `period` (the
        recheck period); while the pool cannot answer, trusted for twice that since its last
        answer, then Unavailable."""
        if self._still_valid is None or not self._recheck:
            return
        period = period or self._recheck
        now = self._clock()
        if now - known.checked_at < period:
            return
        trusted_still = now - known.checked_at < 2 * period
        if now < known.next_ask:  # the pool did not answer a moment ago: no request waits on it
            if trusted_still:
                return
            raise Unavailable("auth_unavailable", detail="the user pool cannot be asked",
                              retry_after=int(RETRY_AFTER_FAILURE_SECONDS))
        metrics.count("token_rechecks")
        try:
            self._still_valid(token)
        except Unauthenticated:
            self._verified.pop(token)
            raise TokenError("token_revoked", detail="the user was disabled, deleted or signed out") from None
        except Unavailable:
            known.next_ask = now + RETRY_AFTER_FAILURE_SECONDS
            if trusted_still:
                log.warning("the user pool cannot be asked about a token; trusted a while longer")
                return
            raise
        known.checked_at = now

    def _check(self, token: str) -> tuple[dict[str, Any], str]:
        """The claims of a token checked in full, and the kid of the key that signed it."""
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise TokenError("token_malformed", detail="not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise TokenError("token_malformed", detail="unreadable token header") from None
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise TokenError("token_invalid", detail="only RS256 tokens with a kid are accepted")
        key = self._key(header["kid"])
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=self.issuer,
                                options={"verify_aud": False, "require_exp": True,
                                         "require_iss": True, "require_sub": True})
        except ExpiredSignatureError:
            raise TokenError("token_expired", detail="the token has expired") from None
        except JOSEError as error:
            raise TokenError("token_invalid", detail=str(error)) from None
        if claims.get("token_use") != "access":
            raise TokenError("token_invalid", detail="not an access token")
        if not self.client_id or claims.get("client_id") != self.client_id:
            raise TokenError("token_invalid", detail="token of another app client")
        if not isinstance(claims.get("sub"), str):
            raise TokenError("token_invalid", detail="no subject")
        return claims, header["kid"]
