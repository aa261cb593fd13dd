"""Opaque pagination cursors, signed and bound to a scope (the caller and the conversation).

A cursor carries the sort key to resume after. It is HMAC-signed with CURSOR_SECRET and names its
scope, so a forged, altered or foreign cursor is refused rather than read from. The partition read
always comes from the request itself, never from the cursor.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from lib.errors import BadRequest

MAX_CURSOR_LENGTH = 512


class Cursors:
    def __init__(self, secret: bytes):
        self._secret = secret

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def encode(self, scope: str, position: str) -> str:
        payload = json.dumps({"s": scope, "p": position}, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._mac(payload)}"

    def decode(self, scope: str, cursor: str) -> str:
        """The position a cursor resumes after, if it is genuine and of this scope; else 400."""
        invalid = BadRequest("cursor_invalid", detail="the cursor is not valid for this list")
        if (not isinstance(cursor, str) or not cursor.isascii()
                or not 0 < len(cursor) <= MAX_CURSOR_LENGTH or cursor.count(".") != 1):
            raise invalid
        body, mac = cursor.split(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            raise invalid from None
        if not hmac.compare_digest(self._mac(payload), mac):
            raise invalid
        try:
            data = json.loads(payload)
        except ValueError:
            raise invalid from None
        if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("p"), str):
            raise invalid
        return data["p"]
