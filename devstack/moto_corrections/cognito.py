"""Corrections to moto's Cognito: a confirmed sign-up's email is verified where the pool
auto-verifies it (5), and a SignUp runs the sign-up Lambda's pre-sign-up check (9)."""
from __future__ import annotations

import types
from typing import Any

from moto.cognitoidp.models import CognitoIdpBackend
from moto.core.exceptions import JsonRESTError

_moto_confirm_sign_up = CognitoIdpBackend.confirm_sign_up
_moto_sign_up = CognitoIdpBackend.sign_up
# the sign-up Lambda's module, when the local stack names its database (install())
_sign_up_lambda: types.ModuleType | None = None


def use_sign_up_lambda(module: types.ModuleType) -> None:
    global _sign_up_lambda
    _sign_up_lambda = module


class UserLambdaValidationException(JsonRESTError):
    """What Cognito answers when a trigger refuses (or fails)."""

    def __init__(self, message: str):
        super().__init__("UserLambdaValidationException", message)


def sign_up(self: CognitoIdpBackend, client_id: str, username: str, password: str,
            attributes: list[dict[str, str]]) -> Any:
    if _sign_up_lambda is not None:
        named = {a["Name"]: a["Value"] for a in attributes}
        if "@" in username:  # the pool's usernames are emails (Cruddur's, and the local one)
            named.setdefault("email", username)
        event = {"version": "1", "triggerSource": "PreSignUp_SignUp", "userName": username,
                 "callerContext": {"clientId": client_id}, "request": {"userAttributes": named},
                 "response": {}}
        try:
            _sign_up_lambda.lambda_handler(event, None)
        except Exception as error:  # the trigger refused, or failed: Cognito refuses either way
            raise UserLambdaValidationException(f"PreSignUp failed with error {error}.") from None
    return _moto_sign_up(self, client_id, username, password, attributes)


def confirm_sign_up(self: CognitoIdpBackend, client_id: str, username: str) -> str:
    answer = _moto_confirm_sign_up(self, client_id, username)
    for pool in self.user_pools.values():
        if client_id in pool.clients:
            user = self.admin_get_user(pool.id, username)
            if ("email" in pool.extended_config.get("AutoVerifiedAttributes", [])
                    and "email" in user.attribute_lookup):
                user.update_attributes([{"Name": "email_verified", "Value": "true"}])
    return answer


