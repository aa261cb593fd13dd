"""Verifying Cognito access tokens with python-jose against the user pool's JWKS.

A token is accepted only with a valid RS256 signature by a key of the pool's JWKS, unexpired,
`iss` of the configured pool, `token_use` = access and `client_id` of the configured app client.
The JWKS is fetched once and cached; an unknown `kid` refetches it, at most once a minute, so a
flood of forged `kid`s cannot turn into a flood of fetches.

A token that passed is remembered (by its exact string, up to VERIFIED_CACHE_SIZE of them) until
its `exp`: a client sends the same token with every request for up to an hour, and checking its
RSA signature and claims again each time is most of the CPU an authenticated request costs.
Nothing about a token can change before it expires (Cognito cannot revoke an access token's
signature), so the cached answer is the answer a fresh check would give. Refused tokens are not
remembered: they cost a full check each time, as before.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from typing import Any, Callable

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError

from lib import metrics
from lib.cache import Cache
from lib.config import Settings
from lib.errors import Unauthenticated, Unavailable

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
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
                 clock: Callable[[], float] = time.time):
        self.issuer = issuer_url(settings)
        self.client_id = settings.cognito_client_id
        self.url = jwks_url(settings)
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._failed = False
        self._lock = threading.Lock()
        self._verified: Cache[dict[str, Any]] = Cache(VERIFIED_CACHE_SIZE, VERIFIED_CACHE_SECONDS)

    def _refresh(self) -> None:
        with self._lock:
            now = self._clock()
            interval = RETRY_AFTER_FAILURE_SECONDS if self._failed else REFETCH_INTERVAL_SECONDS
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
            self._failed = False
            keys = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(keys, list):
                log.warning("the JWKS from %s has no list of keys", self.url)
                keys = []
            self._keys = {k["kid"]: k for k in keys if isinstance(k, dict) and "kid" in k}

    def _key(self, kid: str) -> dict[str, Any]:
        if kid not in self._keys:
            self._refresh()
        key = self._keys.get(kid)
        if key is None:
            if self._failed:
                raise Unavailable("auth_unavailable", detail="the user pool's keys cannot be fetched",
                                  retry_after=int(RETRY_AFTER_FAILURE_SECONDS))
            raise TokenError("token_invalid", detail="unknown signing key")
        return key

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or TokenError."""
        claims = self._verified.get(token)
        if claims is not None:
            if claims["exp"] > self._clock():
                return claims
            raise TokenError("token_expired", detail="the token has expired")
        claims = self._check(token)
        self._verified.put(token, claims)
        return claims

    def _check(self, token: str) -> dict[str, Any]:
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
        return claims
