"""A signed-in user the API has never seen becomes a Cruddur user, as the post-confirmation
trigger would have made them, by the same code (lib/users.py over domain/identity.py): where no
trigger runs, as in the local stack (moto's Cognito), where the trigger failed, or where the
email was verified after the confirmation."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from domain import identity
from domain.errors import Conflict, NotPermitted
from lib.users import UserStore

# An access token -> the attributes Cognito holds for its user (GetUser).
AttributesOf = Callable[[str], Mapping[str, Any]]


class ProvisionUser:
    @staticmethod
    def run(attributes_of: AttributesOf, users: UserStore, access_token: str, sub: str) -> dict[str, Any] | None:
        """The new (or found) user of this token, {uuid, display_name, handle}."""
        attributes = attributes_of(access_token)
        if attributes.get("sub") != sub:
            return None
        try:
            users.create(attributes)
        except identity.EmailUnverified:
            raise NotPermitted("user_unknown", detail="confirm your email to use Cruddur") from None
        except (identity.UserConflict, identity.UserInvalid) as error:
            raise Conflict(error.code, detail=str(error)) from None
        return users.by_identity(sub)
