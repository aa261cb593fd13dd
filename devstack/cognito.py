"""The local Cognito pool (moto's): made to mirror Cruddur's, filled with the PostgreSQL users, and
signed into with a password as the frontend does. Never used against AWS."""
from __future__ import annotations

from typing import Any

from lib import aws, cognito
from lib.config import Settings
from lib.db import Db
from lib.users import UserStore
from devstack.settings import LocalSettings


class PoolMissing(LookupError):
    """The local pool or its app client does not exist (yet)."""


def pool_args(local: LocalSettings) -> dict[str, Any]:
    """CreateUserPool arguments: the email is the username, with name and preferred_username."""
    return {
        "PoolName": local.user_pool_name,
        "UsernameAttributes": ["email"],
        "AutoVerifiedAttributes": ["email"],
        "Schema": [
            {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True},
            {"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True},
            {"Name": "preferred_username", "AttributeDataType": "String", "Required": True,
             "Mutable": True},
        ],
    }


def client_args(local: LocalSettings) -> dict[str, Any]:
    """CreateUserPoolClient arguments: no secret, the frontend's flows."""
    return {
        "ClientName": local.user_pool_client_name,
        "GenerateSecret": False,
        "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH",
                              "ALLOW_REFRESH_TOKEN_AUTH"],
    }


def find_pool(client: Any, local: LocalSettings) -> str:
    """The id of the local pool, found by its name."""
    for pool in client.list_user_pools(MaxResults=60)["UserPools"]:
        if pool["Name"] == local.user_pool_name:
            return pool["Id"]
    raise PoolMissing(f"no user pool named {local.user_pool_name}: run bin/cognito/setup")


def find_client(client: Any, pool_id: str, local: LocalSettings) -> str:
    for app_client in client.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]:
        if app_client["ClientName"] == local.user_pool_client_name:
            return app_client["ClientId"]
    raise PoolMissing(f"no app client named {local.user_pool_client_name}")


def ensure_pool(settings: Settings, local: LocalSettings) -> tuple[str, str]:
    """Create the local pool and its app client when missing. Returns (pool id, client id)."""
    client = aws.client(settings, "cognito-idp")
    try:
        pool_id = find_pool(client, local)
    except PoolMissing:
        pool_id = client.create_user_pool(**pool_args(local))["UserPool"]["Id"]
    try:
        client_id = find_client(client, pool_id, local)
    except PoolMissing:
        client_id = client.create_user_pool_client(
            UserPoolId=pool_id, **client_args(local))["UserPoolClient"]["ClientId"]
    return pool_id, client_id


def add_user(client: Any, pool_id: str, user: dict[str, Any], password: str) -> None:
    """One user ({email, display_name, handle}) in the pool, signed up and confirmed, with a
    permanent password: as the frontend's sign-up leaves them."""
    client.admin_create_user(
        UserPoolId=pool_id, Username=user["email"], MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": user["email"]},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "name", "Value": user["display_name"]},
            {"Name": "preferred_username", "Value": user["handle"]},
        ],
    )
    client.admin_set_user_password(UserPoolId=pool_id, Username=user["email"],
                                   Password=password, Permanent=True)


def seed_users(settings: Settings, db: Db, local: LocalSettings) -> list[str]:
    """Add every PostgreSQL user missing from the local pool, with the seed password. Returns the
    handles added."""
    client = aws.client(settings, "cognito-idp")
    pool_id = settings.cognito_user_pool_id or find_pool(client, local)
    present = {u.get("preferred_username") for u in cognito.pool_users(client, pool_id)}
    added = []
    for user in UserStore(db).everyone():
        if user["handle"] not in present:
            add_user(client, pool_id, user, local.seed_password)
            added.append(user["handle"])
    return added


def access_token(settings: Settings, handle: str, password: str | None = None,
                 local: LocalSettings | None = None) -> str:
    """Sign a user of the local pool in with USER_PASSWORD_AUTH, as the frontend does, by handle
    (with the seed password unless another is given)."""
    local = local or LocalSettings()
    client = aws.client(settings, "cognito-idp")
    pool_id = settings.cognito_user_pool_id or find_pool(client, local)
    client_id = settings.cognito_client_id or find_client(client, pool_id, local)
    emails = [u["email"] for u in cognito.pool_users(client, pool_id)
              if u.get("preferred_username") == handle]
    if not emails:
        raise PoolMissing(f"no user with handle {handle!r} in the pool")
    result = client.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": emails[0],
                                                  "PASSWORD": password or local.seed_password})
    return result["AuthenticationResult"]["AccessToken"]
