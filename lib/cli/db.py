"""bin/db/*: the PostgreSQL database: create, drop, schema, seed, connect, link to Cognito."""
from __future__ import annotations

import os
import shutil
from typing import Any

import click
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lib.cli import common
from lib.config import ROOT, Settings
from lib.db import template

SCHEMA_FILE = ROOT / "db" / "schema.sql"
SEED_FILE = ROOT / "db" / "seed.sql"


def database_name(settings: Settings) -> str:
    return conninfo_to_dict(settings.connection_url).get("dbname") or "postgres"


def _maintenance(settings: Settings) -> psycopg.Connection:
    """A connection to the server's `postgres` database, for CREATE and DROP DATABASE."""
    return psycopg.connect(make_conninfo(settings.connection_url, dbname="postgres"),
                           autocommit=True, connect_timeout=5)


def create_database(settings: Settings) -> bool:
    name = database_name(settings)
    with _maintenance(settings) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(settings: Settings) -> bool:
    name = database_name(settings)
    with _maintenance(settings) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        return bool(exists)


def run_file(settings: Settings, path: os.PathLike) -> None:
    with psycopg.connect(settings.connection_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(open(path).read())


def cognito_subs_by_handle(settings: Settings) -> dict[str, str]:
    client = common.cognito_client(settings)
    pool_id = common.user_pool_id(settings, client)
    subs = {}
    for page in client.get_paginator("list_users").paginate(UserPoolId=pool_id):
        for user in page["Users"]:
            attributes = {a["Name"]: a["Value"] for a in user["Attributes"]}
            if "preferred_username" in attributes and "sub" in attributes:
                subs[attributes["preferred_username"]] = attributes["sub"]
    return subs


def update_cognito_user_ids(settings: Settings) -> dict[str, str]:
    """Set each user's cognito_user_id from the pool, matched by handle. Returns what it set."""
    subs = cognito_subs_by_handle(settings)
    db = common.open_db(settings)
    try:
        for handle, sub in subs.items():
            db.query_commit(template("users", "update_cognito_user_id"),
                            {"handle": handle, "cognito_user_id": sub})
    finally:
        db.close()
    return subs


def setup(settings: Settings) -> None:
    """Create the database if missing, load the schema and the seed (both idempotent)."""
    create_database(settings)
    run_file(settings, SCHEMA_FILE)
    run_file(settings, SEED_FILE)


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
    created = create_database(settings)
    click.echo(f"database {database_name(settings)} {'created' if created else 'already exists'}")


@cli.command()
@common.yes_option
@common.target_option
def drop(settings: Settings, prod: bool, yes: bool) -> None:
    """Drop the database named in the connection URL."""
    _require_url(settings)
    common.confirm_destructive(prod, f"drop the database {database_name(settings)}", yes)
    dropped = drop_database(settings)
    click.echo(f"database {database_name(settings)} {'dropped' if dropped else 'did not exist'}")


@cli.command("schema-load")
@common.target_option
def schema_load(settings: Settings, prod: bool) -> None:
    """Load db/schema.sql (idempotent)."""
    _require_url(settings)
    run_file(settings, SCHEMA_FILE)
    click.echo("schema loaded")


@cli.command("seed")
@common.target_option
def seed_command(settings: Settings, prod: bool) -> None:
    """Load db/seed.sql (idempotent)."""
    _require_url(settings)
    run_file(settings, SEED_FILE)
    click.echo("seed loaded")


@cli.command()
@common.target_option
def connect(settings: Settings, prod: bool) -> None:
    """Open psql on the database."""
    _require_url(settings)
    from lib.local_stack import postgres_bin_path

    psql = shutil.which("psql") or str(postgres_bin_path() / "psql")
    os.execv(psql, [psql, settings.connection_url])


@cli.command("setup")
@click.option("--reset", is_flag=True, help="Drop the database first.")
@common.yes_option
@common.target_option
def setup_command(settings: Settings, prod: bool, reset: bool, yes: bool) -> None:
    """create, schema-load and seed, in order (--reset drops first)."""
    _require_url(settings)
    if reset:
        common.confirm_destructive(prod, f"drop the database {database_name(settings)}", yes)
        drop_database(settings)
    setup(settings)
    click.echo(f"database {database_name(settings)} ready")


@cli.command("update-cognito-user-ids")
@common.target_option
def update_cognito_user_ids_command(settings: Settings, prod: bool) -> None:
    """Set each user's cognito_user_id from the pool, matched by handle."""
    _require_url(settings)
    for handle, sub in sorted(update_cognito_user_ids(settings).items()):
        click.echo(f"{handle} {sub}")


if __name__ == "__main__":
    common.run(cli)
