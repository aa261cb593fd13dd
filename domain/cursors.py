"""Opaque pagination cursors, signed (itsdangerous) and bound to a scope (the caller and the
conversation).

A cursor carries the sort key to resume after. It is signed with CURSOR_SECRET and names its
scope, so a forged, altered or foreign cursor is refused rather than read from. The partition read
always comes from the request itself, never from the cursor.
"""
from __future__ import annotations

from typing import Any

from itsdangerous import BadData, Signer, URLSafeSerializer

from domain.errors import MalformedRequest

MAX_CURSOR_LENGTH = 512


class _KeyOnceSigner(Signer):
    """itsdangerous's Signer, deriving its key from the secret once instead of for every
    signature (the key, and so every cursor, is the same)."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:
            return super().derive_key(secret_key)
        if "_derived" not in self.__dict__:
            self._derived = super().derive_key()
        return self._derived


class _Serializer(URLSafeSerializer):
    """itsdangerous's URL-safe serializer, with one signer made for its own salt and kept."""

    signer = _KeyOnceSigner

    def make_signer(self, salt: Any = None) -> Signer:
        if salt is not None and salt != self.salt:
            return super().make_signer(salt)
        if "_own_signer" not in self.__dict__:
            self._own_signer = super().make_signer()
        return self._own_signer


class Cursors:
    def __init__(self, secret: bytes):
        self._serializer = _Serializer(secret, salt="cruddur.cursor")

    def encode(self, scope: str, position: str) -> str:
        return self._serializer.dumps([scope, position])

    def decode(self, scope: str, cursor: str) -> str:
        """The position a cursor resumes after, if it is genuine and of this scope; else
        MalformedRequest."""
        invalid = MalformedRequest("cursor_invalid", detail="the cursor is not valid for this list")
        if not isinstance(cursor, str) or not cursor.isascii() or not 0 < len(cursor) <= MAX_CURSOR_LENGTH:
            raise invalid
        try:
            data = self._serializer.loads(cursor)
        except (BadData, ValueError):
            raise invalid from None
        if (not isinstance(data, list) or len(data) != 2 or data[0] != scope
                or not isinstance(data[1], str)):
            raise invalid
        return data[1]
