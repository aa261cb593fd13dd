"""bin/cognito/*: the user pool: the local pool's setup, its users, and access tokens."""
from __future__ import annotations

from typing import Any

import click

from lib import config
from lib.cli import common
from lib.config import Settings
from lib.db import template

# The local pool mirrors Cruddur's: the email is the username, with name and preferred_username.
POOL_ARGS: dict[str, Any] = {
    "PoolName": config.LOCAL_USER_POOL_NAME,
    "UsernameAttributes": ["email"],
    "AutoVerifiedAttributes": ["email"],
    "Schema": [
        {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True},
        {"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True},
        {"Name": "preferred_username", "AttributeDataType": "String", "Required": True, "Mutable": True},
    ],
}
CLIENT_ARGS: dict[str, Any] = {
    "ClientName": config.LOCAL_USER_POOL_CLIENT_NAME,
    "GenerateSecret": False,
    "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
}


def ensure_local_pool(settings: Settings) -> tuple[str, str]:
    """Create the local pool and its app client when missing. Returns (pool id, client id)."""
    client = common.cognito_client(settings)
    try:
        pool_id = common.user_pool_id(settings, client)
    except click.ClickException:
        pool_id = client.create_user_pool(**POOL_ARGS)["UserPool"]["Id"]
    try:
        client_id = common.user_pool_client_id(settings, pool_id, client)
    except click.ClickException:
        client_id = client.create_user_pool_client(UserPoolId=pool_id, **CLIENT_ARGS)["UserPoolClient"]["ClientId"]
    return pool_id, client_id


def pool_users(settings: Settings) -> list[dict[str, str]]:
    """Every user of the pool as {username, status, sub, email, name, preferred_username}."""
    client = common.cognito_client(settings)
    pool_id = common.user_pool_id(settings, client)
    users = []
    for page in client.get_paginator("list_users").paginate(UserPoolId=pool_id):
        for user in page["Users"]:
            attributes = {a["Name"]: a["Value"] for a in user["Attributes"]}
            users.append({"username": user["Username"], "status": user.get("UserStatus", ""), **attributes})
    return users


def seed_local_users(settings: Settings, db: Any, password: str = config.LOCAL_SEED_PASSWORD) -> list[str]:
    """Add every PostgreSQL user missing from the local pool, with a permanent password."""
    client = common.cognito_client(settings)
    pool_id = common.user_pool_id(settings, client)
    present = {u.get("preferred_username") for u in pool_users(settings)}
    added = []
    for user in db.query_array_json(template("users", "list")):
        if user["handle"] in present:
            continue
        add_local_user(client, pool_id, user, password)
        added.append(user["handle"])
    return added


def add_local_user(client: Any, pool_id: str, user: dict[str, Any],
                   password: str = config.LOCAL_SEED_PASSWORD) -> None:
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


def access_token(settings: Settings, handle: str, password: str = config.LOCAL_SEED_PASSWORD) -> str:
    """Sign a user of the pool in with USER_PASSWORD_AUTH, as the frontend does, by handle."""
    client = common.cognito_client(settings)
    pool_id = common.user_pool_id(settings, client)
    client_id = common.user_pool_client_id(settings, pool_id, client)
    emails = [u["email"] for u in pool_users(settings) if u.get("preferred_username") == handle]
    if not emails:
        raise click.ClickException(f"no user with handle {handle!r} in the pool")
    result = client.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": emails[0], "PASSWORD": password})
    return result["AuthenticationResult"]["AccessToken"]


@click.group()
def cli() -> None:
    """The Cognito user pool."""


@cli.command("setup")
@common.target_option
def setup_command(settings: Settings, prod: bool) -> None:
    """Create the local pool and client, and add the PostgreSQL users to it."""
    common.refuse_prod(prod, "setup")
    pool_id, client_id = ensure_local_pool(settings)
    added = seed_local_users(settings, common.open_db(settings))
    click.echo(f"pool {pool_id} client {client_id}; added {', '.join(added) or 'nobody'}")


@cli.command("list-users")
@common.target_option
def list_users(settings: Settings, prod: bool) -> None:
    """List the pool's users: handle, sub, email, status."""
    for user in pool_users(settings):
        click.echo(f"{user.get('preferred_username', '-'):<20} {user.get('sub', '-'):<38} "
                   f"{user.get('email', '-'):<28} {user['status']}")


@cli.command()
@click.argument("handle")
@common.target_option
def token(settings: Settings, prod: bool, handle: str) -> None:
    """Print an access token for a seeded user of the local pool (last line of the output)."""
    common.refuse_prod(prod, "token")
    click.echo(access_token(settings, handle))


if __name__ == "__main__":
    common.run(cli)
