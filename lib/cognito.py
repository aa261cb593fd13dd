"""Cognito user pools through boto3: the pool's users as plain dicts, and a signed-in user's own
attributes. (Access tokens are verified by lib/cognito_jwt_token.py; who may become a Cruddur
user is domain/identity.py.)"""
from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from domain.errors import Unauthenticated, Unavailable


def pool_users(client: Any, pool_id: str) -> list[dict[str, str]]:
    """Every user of the pool as {username, status, <attribute name>: <value>, ...}: sub, email,
    email_verified, name, preferred_username as the pool has them."""
    users = []
    for page in client.get_paginator("list_users").paginate(UserPoolId=pool_id):
        for user in page["Users"]:
            attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
            users.append({**attributes, "username": user["Username"],
                          "status": user.get("UserStatus", "")})
    return users


def own_attributes(client: Any, access_token: str) -> dict[str, str]:
    """The attributes of the user an access token belongs to (GetUser, with the token itself)."""
    try:
        response = client.get_user(AccessToken=access_token)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NotAuthorizedException", "UserNotFoundException"):
            raise Unauthenticated("token_invalid", detail="the pool does not know this token's user") from error
        raise Unavailable("auth_unavailable", detail="the user pool cannot be asked", retry_after=5) from error
    except BotoCoreError as error:
        raise Unavailable("auth_unavailable", detail="the user pool cannot be reached", retry_after=5) from error
    return {a["Name"]: a["Value"] for a in response.get("UserAttributes", [])}


def invite(client: Any, pool_id: str, user: dict[str, Any]) -> str | None:
    """Make the pool account of a Cruddur user who has none (AdminCreateUser with their email,
    verified, handle and name): Cognito mails a temporary password to that address, so only its
    owner can sign in, and the API links their row at their first request (lib/users.py).
    The new account's sub; None when the pool has an account for that email already."""
    try:
        created = client.admin_create_user(
            UserPoolId=pool_id, Username=user["email"], DesiredDeliveryMediums=["EMAIL"],
            UserAttributes=[{"Name": "email", "Value": user["email"]},
                            {"Name": "email_verified", "Value": "true"},
                            {"Name": "name", "Value": user["display_name"]},
                            {"Name": "preferred_username", "Value": user["handle"]}])
    except client.exceptions.UsernameExistsException:
        return None
    return {a["Name"]: a["Value"] for a in created["User"].get("Attributes", [])}.get("sub")
