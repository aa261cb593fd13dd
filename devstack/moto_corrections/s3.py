"""Correction 12 to moto's S3: a presigned URL is checked as S3 checks it. moto accepted any
query signature, so a URL signed for one key, one Content-Type or five minutes would work for
every key, any type, forever; locally, then, nothing would show that the API signs for the
caller's own avatar key only. Here a request that carries a SigV4 query signature is refused
(403, S3's error codes) when it has expired or when its signature is not the one its
credentials' secret gives for this method, path, query and signed headers.

Requests signed in their headers (every SDK call) are left to moto, which accepts any."""
from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime, timezone
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"
# The local credentials (lib/aws.py local_credentials), and the environment's own if it has them.
LOCAL_SECRETS = {"test": "test"}


def secrets(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) if env is None else env
    found = dict(LOCAL_SECRETS)
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        found[env["AWS_ACCESS_KEY_ID"]] = env["AWS_SECRET_ACCESS_KEY"]
    return found


def refusal(environ: dict[str, Any], known: dict[str, str], now: datetime) -> tuple[str, str] | None:
    """(S3's error code, message) when this presigned request must be refused; None otherwise
    (no query signature, or a valid one)."""
    raw = environ.get("QUERY_STRING", "")
    query = parse_qsl(raw, keep_blank_values=True)
    params = dict(query)
    if "X-Amz-Signature" not in params or params.get("X-Amz-Algorithm") != ALGORITHM:
        return None
    try:
        key_id, date, region, service, terminal = params["X-Amz-Credential"].split("/")
        signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"]
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError", "the query's signature parameters are incomplete"
    if key_id not in known:
        return "InvalidAccessKeyId", "the AWS access key id you provided does not exist in our records"
    if not 1 <= expires <= 604800:
        return "AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and 604800 seconds"
    if (now - signed_at).total_seconds() > expires:
        return "AccessDenied", "Request has expired"
    path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/"))
    path = path.split("?", 1)[0]
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(
        (k, v) for k, v in query if k != "X-Amz-Signature"))
    headers = []
    for name in signed_headers.split(";"):
        value = _header(environ, name)
        if value is None:
            return "SignatureDoesNotMatch", f"the signed header {name} is missing"
        headers.append(f"{name}:{' '.join(value.split())}\n")
    canonical = "\n".join([environ["REQUEST_METHOD"], path, canonical_query, "".join(headers),
                           signed_headers, "UNSIGNED-PAYLOAD"])
    scope = f"{date}/{region}/{service}/{terminal}"
    to_sign = "\n".join([ALGORITHM, params["X-Amz-Date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{known[key_id]}".encode()
    for part in (date, region, service, terminal):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    wanted = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(wanted, params["X-Amz-Signature"]):
        return ("SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided")
    return None


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _header(environ: dict[str, Any], name: str) -> str | None:
    if name == "host":
        return environ.get("HTTP_HOST")
    if name in ("content-type", "content-length"):
        return environ.get(name.upper().replace("-", "_"))
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


class PresignedUrls:
    """WSGI middleware: a presigned request that S3 would refuse is refused before moto sees it."""

    def __init__(self, app: Callable[..., Iterable[bytes]], known: dict[str, str] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.app = app
        self.known = secrets() if known is None else known
        self.clock = clock

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "OPTIONS":  # a preflight carries no signature
            refused = refusal(environ, self.known, self.clock())
            if refused:
                code, message = refused
                body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                        f"<Message>{message}</Message></Error>").encode()
                start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                                 ("Content-Length", str(len(body)))])
                return [body]
        return self.app(environ, start_response)
