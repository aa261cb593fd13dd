"""A user's own profile, as the final frontend edits it: display name and bio."""
from __future__ import annotations

from typing import Any

from domain import identity
from domain.errors import InvalidInput, MalformedRequest, NotPermitted
from lib.cache import Cache
from lib.users import UserStore
from services import validation
from services.names import Names

BIO_MAX_LENGTH = 160


class UpdateProfile:
    @staticmethod
    def run(users: UserStore, names: Names, known_users: Cache[dict[str, Any]], caller: dict[str, Any],
            body: Any) -> dict[str, Any]:
        """Set the caller's display name and bio (each left as it is when absent or null): the
        caller's {uuid, handle, display_name, bio} after. Lists show the new name within a minute
        everywhere, at once in this process (services/names.py)."""
        if not isinstance(body, dict):
            raise MalformedRequest("body_invalid", detail="the body must be a JSON object")
        display_name = body.get("display_name")
        if display_name is not None:
            problem = identity.display_name_problem(display_name)
            if problem:
                raise InvalidInput("display_name_invalid", detail=f"the display name {problem}")
            display_name = display_name.strip()
        bio = body.get("bio")
        if bio is not None:
            if not isinstance(bio, str):
                raise InvalidInput("bio_invalid", detail="the bio must be a string")
            bio = bio.strip()
            if len(bio) > BIO_MAX_LENGTH:
                raise InvalidInput("bio_too_long", detail=f"a bio is at most {BIO_MAX_LENGTH} characters")
            if bio:
                bio = validation.text(bio, BIO_MAX_LENGTH, too_long="bio_too_long", blank="bio_invalid",
                                      invalid="bio_invalid")
        updated = users.update_profile(str(caller["uuid"]), display_name, bio)
        if updated is None:  # the caller's row went away meanwhile
            raise NotPermitted("user_unknown", detail="no Cruddur user for this identity")
        names.remember(updated)
        known_users.clear()  # the caller's own cached row (it signs what they send from now on)
        return updated
