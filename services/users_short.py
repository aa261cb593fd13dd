"""A user's public card, for starting a conversation from /messages/new/<handle>."""
from __future__ import annotations

from typing import Any

from lib.db import template
from lib.errors import CruddurError, NotFound
from services import validation
from services.backend import Backend


class UsersShort:
    @staticmethod
    def run(backend: Backend, handle: str) -> dict[str, Any]:
        try:
            validation.handle(handle)
        except CruddurError:
            raise NotFound("user_not_found", detail="no such user") from None
        user = by_handle(backend, handle)
        if user is None:
            raise NotFound("user_not_found", detail="no such user")
        return user


def by_handle(backend: Backend, handle: str) -> dict[str, Any] | None:
    """{uuid, handle, display_name} of the user with this handle, or None. Read each time, never
    cached: unlike a Cognito sub, a handle can be renamed and given to someone else, and a stale
    entry would deliver a message to the wrong person."""
    return backend.db.query_object_json(template("users", "short"), {"handle": handle})
