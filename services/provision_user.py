"""A signed-in user the API has never seen becomes a Cruddur user, as the post-confirmation
trigger would have made them (aws/lambdas/cruddur-post-confirmation.py, whose code this runs):
where no trigger runs, as in the local stack (moto's Cognito), or where it failed."""
from __future__ import annotations

from typing import Any

from lib import aws, cognito
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
        if attributes.get("email_verified") != "true":
            raise NotPermitted("user_unknown", detail="confirm your email to use Cruddur")
        trigger = cognito.post_confirmation()
        try:
            with backend.db.connection() as conn:
                trigger.create_user(conn, attributes)
        except trigger.UserConflict as error:
            raise Conflict(error.code, detail=str(error)) from None
        except trigger.UserInvalid as error:
            raise Conflict("user_invalid", detail=str(error)) from None
        return backend.db.query_object_json(template("users", "by_cognito_user_id"),
                                            {"cognito_user_id": sub})
