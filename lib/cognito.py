"""Cognito user pools through boto3: the pool's users as plain dicts. (Access tokens are verified
by lib/cognito_jwt_token.py.)"""
from __future__ import annotations

from typing import Any


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
