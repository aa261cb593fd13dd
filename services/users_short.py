"""A user's public card, for starting a conversation from /messages/new/<handle>."""
from __future__ import annotations

from typing import Any

from domain.errors import CruddurError, InvalidInput, NotFound
from lib.users import UserStore
from services import validation


class UsersShort:
    @staticmethod
    def run(users: UserStore, handle: str) -> dict[str, Any]:
        """{uuid, handle, display_name} of the user with this handle. Read each time, never
        cached: unlike a Cognito sub, a handle can be renamed and given to someone else, and a
        stale entry would deliver a message to the wrong person."""
        try:
            validation.handle(handle)
        except CruddurError:
            raise NotFound("user_not_found", detail="no such user") from None
        user = users.by_handle(handle)
        if user is None:
            raise NotFound("user_not_found", detail="no such user")
        return user


def other_user(users: UserStore, caller: dict[str, Any], handle: Any,
               if_self: InvalidInput) -> dict[str, Any]:
    """The user with this handle, who must not be the caller: handle_invalid for what cannot be
    a handle, NotFound for a handle nobody has, `if_self` raised for the caller's own."""
    validation.handle(handle)
    other = users.by_handle(handle)
    if other is None:
        raise NotFound("user_not_found", detail="no user with that handle")
    if str(other["uuid"]) == str(caller["uuid"]):
        raise if_self
    return other
