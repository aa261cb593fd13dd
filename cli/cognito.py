"""bin/cognito/*: the user pool: the local pool's setup, its users, and access tokens."""
from __future__ import annotations

import click

from lib import cognito
from cli import common
from lib.config import Settings
from lib.users import UserStore
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
@click.argument("handles", nargs=-1)
@click.option("--all", "everyone", is_flag=True, help="Every user without a Cognito identity.")
@common.target_option
def invite(settings: Settings, prod: bool, handles: tuple[str, ...], everyone: bool) -> None:
    """Open the accounts of users from before sign-ups (in PostgreSQL, without a Cognito
    identity): the pool makes each one's account for their email and mails them a temporary
    password; their first request links their row. A self sign-up with such an email is refused,
    so that nobody else can set its password (docs/security.md)."""
    if not handles and not everyone:
        raise click.UsageError("name the handles to invite, or pass --all")
    client = common.cognito_client(settings)
    pool_id = common.user_pool_id(settings, client)
    wanted = {h.lower() for h in handles}
    users = [u for u in UserStore(common.open_db(settings)).everyone()
             if not u.get("cognito_user_id") and (everyone or u["handle"].lower() in wanted)]
    found = {u["handle"].lower() for u in users}
    for handle in handles:
        if handle.lower() not in found:
            click.echo(f"{handle}: no user without an identity has this handle", err=True)
    for user in users:
        if cognito.invite(client, pool_id, user) is None:
            click.echo(f"{user['handle']}: the pool has an account for {user['email']} already")
        else:
            click.echo(f"invited {user['handle']} ({user['email']})")


@cli.command()
@click.argument("handle")
@common.target_option
def token(settings: Settings, prod: bool, handle: str) -> None:
    """Print an access token for a seeded user of the local pool (last line of the output)."""
    common.refuse_prod(prod, "token")
    click.echo(access_token(settings, handle, local=common.local()))


if __name__ == "__main__":
    common.run(cli)
