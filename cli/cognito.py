"""bin/cognito/*: the user pool: the local pool's setup, its users, and access tokens."""
from __future__ import annotations

import click

from lib import cognito
from cli import common
from lib.config import Settings
from devstack import access_token
from devstack import cognito as local_cognito


@click.group()
def cli() -> None:
    """The Cognito user pool."""


@cli.command("setup")
@common.target_option
def setup_command(settings: Settings, prod: bool) -> None:
    """Create the local pool and client, and add the PostgreSQL users to it."""
    common.refuse_prod(prod, "setup")
    pool_id, client_id = local_cognito.ensure_pool(settings, common.local())
    added = local_cognito.seed_users(settings.with_(cognito_user_pool_id=pool_id),
                                     common.open_db(settings), common.local())
    click.echo(f"pool {pool_id} client {client_id}; added {', '.join(added) or 'nobody'}")


@cli.command("list-users")
@common.target_option
def list_users(settings: Settings, prod: bool) -> None:
    """List the pool's users: handle, sub, email, status."""
    client = common.cognito_client(settings)
    for user in cognito.pool_users(client, common.user_pool_id(settings, client)):
        click.echo(f"{user.get('preferred_username', '-'):<20} {user.get('sub', '-'):<38} "
                   f"{user.get('email', '-'):<28} {user['status']}")


@cli.command()
@click.argument("handle")
@common.target_option
def token(settings: Settings, prod: bool, handle: str) -> None:
    """Print an access token for a seeded user of the local pool (last line of the output)."""
    common.refuse_prod(prod, "token")
    click.echo(access_token(settings, handle, local=common.local()))


if __name__ == "__main__":
    common.run(cli)
