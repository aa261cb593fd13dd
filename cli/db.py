"""bin/db/*: the PostgreSQL database: create, drop, schema, seed, connect, link to Cognito."""
from __future__ import annotations

import os
import shutil
from typing import Mapping

import click

from lib import cognito, db as pg
from cli import common
from lib.config import Settings
from devstack import postgres_bin_path
from lib.users import UserStore
from services.link_cognito_users import LinkCognitoUsers, LinkReport



def database_name(settings: Settings) -> str:
    return pg.database_name(settings.connection_url)


def confirm_drop(settings: Settings, prod: bool, yes: bool) -> None:
    """Dropping any database but the embedded local one asks first (with --prod or without)."""
    from psycopg.conninfo import conninfo_to_dict

    where = conninfo_to_dict(settings.connection_url)
    target = None if common.is_embedded_database(settings) else (
        f"at {where.get('host', 'localhost')}:{where.get('port', 5432)} "
        "(not the embedded local database)")
    common.confirm_destructive(prod, f"drop the database {database_name(settings)}", yes, target)


def update_cognito_user_ids(settings: Settings, replace: bool = False) -> LinkReport:
    """Set each user's cognito_user_id from the pool user with the same verified email."""
    client = common.cognito_client(settings)
    users = cognito.pool_users(client, common.user_pool_id(settings, client))
    db = common.open_db(settings)
    try:
        return LinkCognitoUsers.run(UserStore(db), users, replace)
    finally:
        db.close()


@click.group()
def cli() -> None:
    """The PostgreSQL database."""


def _require_url(settings: Settings) -> None:
    if not settings.connection_url:
        raise click.ClickException("--prod needs PROD_CONNECTION_URL to be set")


@cli.command()
@common.target_option
def create(settings: Settings, prod: bool) -> None:
    """Create the database named in the connection URL."""
    _require_url(settings)
    created = pg.create_database(settings.connection_url)
    click.echo(f"database {database_name(settings)} {'created' if created else 'already exists'}")


@cli.command()
@common.yes_option
@common.target_option
def drop(settings: Settings, prod: bool, yes: bool) -> None:
    """Drop the database named in the connection URL."""
    _require_url(settings)
    confirm_drop(settings, prod, yes)
    dropped = pg.drop_database(settings.connection_url)
    click.echo(f"database {database_name(settings)} {'dropped' if dropped else 'did not exist'}")


@cli.command("schema-load")
@common.target_option
def schema_load(settings: Settings, prod: bool) -> None:
    """Load db/schema.sql (idempotent)."""
    _require_url(settings)
    pg.run_sql_file(settings.connection_url, pg.SCHEMA_FILE)
    click.echo("schema loaded")


@cli.command()
@common.target_option
def migrate(settings: Settings, prod: bool) -> None:
    """Bring an existing database to db/schema.sql (idempotent; keeps every row).

    What is missing is added (tables, columns' types, constraints, indexes, the activity view and
    functions); a database of the bootcamp's week-5 schema is converted (integer
    reply_to_activity_uuid, times without time zone, 'MOCK' cognito_user_ids). Run it again at
    will: the second run changes nothing."""
    _require_url(settings)
    pg.run_sql_file(settings.connection_url, pg.SCHEMA_FILE)
    click.echo(f"database {database_name(settings)} migrated to db/schema.sql")


@cli.command("lambda-users")
@common.target_option
def lambda_users(settings: Settings, prod: bool) -> None:
    """Make the Lambdas' own database users, with only what each needs (db/lambda_users.sql):
    cruddur_events (the event log) and cruddur_sign_up (users). Passwords from EVENTS_DB_PASSWORD
    and SIGN_UP_DB_PASSWORD when set; their URLs then go to bin/aws/deploy
    (PROD_EVENTS_CONNECTION_URL, PROD_SIGN_UP_CONNECTION_URL), which keeps them in Secrets Manager."""
    import psycopg
    from psycopg import sql

    _require_url(settings)
    pg.run_sql_file(settings.connection_url, pg.LAMBDA_USERS_FILE)
    with psycopg.connect(settings.connection_url, autocommit=True, connect_timeout=5) as conn:
        for user, variable in (("cruddur_events", "EVENTS_DB_PASSWORD"), ("cruddur_sign_up", "SIGN_UP_DB_PASSWORD")):
            password = os.environ.get(variable)
            if password:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))
            click.echo(f"{user}: ready{', password set' if password else f' (no password: set {variable} and run again)'}")


@cli.command("seed")
@common.target_option
def seed_command(settings: Settings, prod: bool) -> None:
    """Load db/seed.sql (idempotent)."""
    _require_url(settings)
    pg.run_sql_file(settings.connection_url, pg.SEED_FILE)
    click.echo("seed loaded")


@cli.command()
@common.target_option
def connect(settings: Settings, prod: bool) -> None:
    """Open psql on the database."""
    _require_url(settings)
    psql = shutil.which("psql") or str(postgres_bin_path() / "psql")
    arguments, env = psql_invocation(settings.connection_url, os.environ)
    os.execve(psql, [psql, *arguments], env)


def psql_invocation(connection_url: str, env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """psql's arguments and environment for a connection URL, the password in PGPASSWORD: never
    on the command line, where any user of the machine can read it (ps)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(connection_url)
    password = params.pop("password", None)
    child = dict(env)
    if password is not None:
        child["PGPASSWORD"] = str(password)
    return ["--dbname", make_conninfo(**params)], child


@cli.command("setup")
@click.option("--reset", is_flag=True, help="Drop the database first.")
@common.yes_option
@common.target_option
def setup_command(settings: Settings, prod: bool, reset: bool, yes: bool) -> None:
    """create, schema-load and seed, in order (--reset drops first)."""
    _require_url(settings)
    if reset:
        confirm_drop(settings, prod, yes)
        pg.drop_database(settings.connection_url)
    pg.setup_database(settings.connection_url)
    click.echo(f"database {database_name(settings)} ready")


@cli.command("update-cognito-user-ids")
@click.option("--replace", is_flag=True,
              help="Also re-link users linked to another identity already (asks with --prod).")
@common.yes_option
@common.target_option
def update_cognito_user_ids_command(settings: Settings, prod: bool, replace: bool, yes: bool) -> None:
    """Link each user to the pool user with the same verified email (cognito_user_id = its sub).

    Matched by verified email only (a preferred_username anyone can choose), never ambiguously;
    a user linked to another identity is left alone without --replace. Prints what it linked
    and what it skipped, and why."""
    _require_url(settings)
    if replace:
        common.confirm_destructive(prod, "replace existing links of users to Cognito identities", yes)
    report = update_cognito_user_ids(settings, replace)
    for handle, sub in sorted(report.linked.items()):
        click.echo(f"linked     {handle} {sub}")
    for handle, sub in sorted(report.unchanged.items()):
        click.echo(f"unchanged  {handle} {sub}")
    for who, why in report.skipped:
        click.echo(f"skipped    {who}: {why}")


if __name__ == "__main__":
    common.run(cli)
