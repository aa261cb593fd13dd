"""A signed-in user the API has never seen becomes a Cruddur user, as the post-confirmation
trigger would have made them, by the same code (lib/identity.py): where no trigger runs, as in the
local stack (moto's Cognito), where the trigger failed, or where the email was verified after
the confirmation."""
from __future__ import annotations

from typing import Any

from lib import aws, cognito, identity
from lib.db import template
from lib.errors import Conflict, NotPermitted
from services.backend import Backend


class ProvisionUser:
    @staticmethod
    def run(backend: Backend, access_token: str, sub: str) -> dict[str, Any] | None:
        """The new (or found) user of this token, {uuid, display_name, handle}."""
        attributes = cognito.own_attributes(aws.client(backend.settings, "cognito-idp"), access_token)
        if attributes.get("sub") != sub:
            return None
        try:
            with backend.db.connection() as conn:
                identity.create_user(conn, attributes)
        except identity.EmailUnverified:
            raise NotPermitted("user_unknown", detail="confirm your email to use Cruddur") from None
        except (identity.UserConflict, identity.UserInvalid) as error:
            raise Conflict(error.code, detail=str(error)) from None
        return backend.db.query_object_json(template("users", "by_cognito_user_id"),
                                            {"cognito_user_id": sub})
