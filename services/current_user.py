"""Who is calling: the verified token's `sub`, mapped to the PostgreSQL user."""
from __future__ import annotations

from typing import Any

from lib.cognito_jwt_token import TokenError
from lib.db import template
from lib.errors import NotPermitted
from services.backend import Backend
from services.provision_user import ProvisionUser


class CurrentUser:
    @staticmethod
    def run(backend: Backend, authorization: str | None) -> dict[str, Any]:
        """The caller's {uuid, display_name, handle} from an `Authorization: Bearer` header."""
        token = _bearer(authorization)
        return _user(backend, token, backend.tokens.verify(token)["sub"])

    @staticmethod
    def for_a_while(backend: Backend, authorization: str | None) -> tuple[dict[str, Any], float]:
        """The caller, for what outlives the request (a live stream), and until when (epoch
        seconds) they may be trusted without their token being checked again."""
        token = _bearer(authorization)
        claims, until = backend.tokens.verify_for_a_while(token)
        return _user(backend, token, claims["sub"]), until


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise TokenError("token_missing", detail="Authorization: Bearer <access token> is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("token_malformed", detail="expected Authorization: Bearer <access token>")
    return token.strip()


def _user(backend: Backend, token: str, sub: str) -> dict[str, Any]:
    def load() -> dict[str, Any] | None:
        found = backend.db.query_object_json(template("users", "by_cognito_user_id"),
                                             {"cognito_user_id": sub})
        if found is None and backend.settings.provisions_users:
            found = ProvisionUser.run(backend, token, sub)
        return found

    user = backend.users.get_or_load(sub, load)
    if user is None:
        raise NotPermitted("user_unknown", detail="no Cruddur user for this Cognito identity")
    return user
