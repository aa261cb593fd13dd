"""Who is calling: the verified token's `sub`, mapped to the PostgreSQL user."""
from __future__ import annotations

from typing import Any

from domain.errors import NotPermitted
from lib.cache import Cache
from lib.cognito_jwt_token import CognitoJwtToken, TokenError
from lib.users import UserStore
from services.provision_user import AttributesOf, ProvisionUser


class CurrentUser:
    """`users` with `known` (Cognito sub -> user, for a short time: users rarely change); with
    `attributes_of`, a signed-in person the API has never seen is made a user (ProvisionUser)."""

    @staticmethod
    def run(tokens: CognitoJwtToken, users: UserStore, known: Cache[dict[str, Any]],
            authorization: str | None, attributes_of: AttributesOf | None = None) -> dict[str, Any]:
        """The caller's {uuid, display_name, handle} from an `Authorization: Bearer` header."""
        token = _bearer(authorization)
        return _user(users, known, attributes_of, token, tokens.verify(token)["sub"])

    @staticmethod
    def for_a_while(tokens: CognitoJwtToken, users: UserStore, known: Cache[dict[str, Any]],
                    authorization: str | None,
                    attributes_of: AttributesOf | None = None) -> tuple[dict[str, Any], float]:
        """The caller, for what outlives the request (a live stream), and until when (epoch
        seconds) they may be trusted without their token being checked again."""
        token = _bearer(authorization)
        claims, until = tokens.verify_for_a_while(token)
        return _user(users, known, attributes_of, token, claims["sub"]), until


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise TokenError("token_missing", detail="Authorization: Bearer <access token> is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("token_malformed", detail="expected Authorization: Bearer <access token>")
    return token.strip()


def _user(users: UserStore, known: Cache[dict[str, Any]], attributes_of: AttributesOf | None,
          token: str, sub: str) -> dict[str, Any]:
    def load() -> dict[str, Any] | None:
        found = users.by_identity(sub)
        if found is None and attributes_of is not None:
            found = ProvisionUser.run(attributes_of, users, token, sub)
        return found

    user = known.get_or_load(sub, load)
    if user is None:
        raise NotPermitted("user_unknown", detail="no Cruddur user for this Cognito identity")
    return user
