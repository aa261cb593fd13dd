"""What every script in bin/ shares: settings, the --prod switch, confirmations and clients.

Scripts depend on everything (the adapters, the services, the local stack); nothing depends on
them.

Scripts talk to the local stack unless given `--prod`. Without it, a script uses
`AWS_ENDPOINT_URL` (or the local stack's default endpoint) and `CONNECTION_URL`; with it, it uses
AWS (no endpoint override) and `PROD_CONNECTION_URL`. Nothing else turns `--prod` on.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any, Callable

import click

from lib import aws, config
from lib.config import Settings
from devstack import LocalSettings, PoolMissing
from devstack import cognito as local_cognito
from devstack import settings as local_settings
from devstack.seed import SeedError


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # its warnings repeat, once per attempt, what the one-line error of a script says
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def run(group: click.Group) -> None:
    """Entry point of a script module. Each wrapper in bin/ runs one command of the group and
    names itself in CRUDDUR_SCRIPT, so that usage lines and errors show the path the user typed
    rather than `python -m cli...`."""
    script = os.environ.pop("CRUDDUR_SCRIPT", None)
    args = sys.argv[1:]
    command = group.commands.get(args[0]) if script and args else None
    if command is None:
        group.main(args=args)
    else:
        command.main(args=args[1:], prog_name=script)


def settings_for(prod: bool, env: dict[str, str] | None = None) -> Settings:
    """With --prod: AWS (every endpoint override dropped, those botocore would read from the
    environment by itself included; see lib.aws) and PROD_CONNECTION_URL. Without: what the
    environment names, else the local stack (its LOCAL_AWS_PORT and LOCAL_PG_PORT)."""
    env = dict(os.environ if env is None else env)
    settings = config.load(env)
    if prod:
        url = env.get("PROD_CONNECTION_URL")
        return settings.with_(aws_endpoint_url=None, service_endpoints=(), connection_url=url or "")
    local = local_settings.load(env)
    if not settings.aws_endpoint_url:
        settings = settings.with_(aws_endpoint_url=local.aws_url)
    if not env.get("CONNECTION_URL"):
        settings = settings.with_(connection_url=local.database_url)
    return settings


def is_embedded_database(settings: Settings, env: dict[str, str] | None = None) -> bool:
    """Whether the connection URL points at the local stack's embedded PostgreSQL (loopback, on
    LOCAL_PG_PORT): the one database a script may drop without asking."""
    from psycopg.conninfo import conninfo_to_dict

    where = conninfo_to_dict(settings.connection_url)
    local = local_settings.load(dict(os.environ if env is None else env))
    return (where.get("host") in ("127.0.0.1", "localhost", "::1")
            and str(where.get("port", 5432)) == str(local.pg_port))


def local() -> LocalSettings:
    return local_settings.load()


def target_option(fn: Callable) -> Callable:
    """Adds --prod and passes `settings` to the command."""

    @click.option("--prod", is_flag=True, default=False,
                  help="Act on real AWS (and PROD_CONNECTION_URL) instead of the local stack.")
    @functools.wraps(fn)
    def wrapper(*args: Any, prod: bool, **kwargs: Any) -> Any:
        setup_logging()
        try:
            settings = settings_for(prod)
        except config.ConfigError as error:
            raise click.ClickException(str(error)) from None
        try:
            return fn(*args, settings=settings, prod=prod, **kwargs)
        except click.ClickException:
            raise
        except Exception as error:
            message = service_error(error, settings)
            if message is None:
                raise
            raise click.ClickException(message) from error

    return wrapper


def service_error(error: Exception, settings: Settings) -> str | None:
    """One line for an error of a service that is down or refuses (no trace), else None."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

    from lib.ddb import StoreError, StoreUnavailable

    hint = " (is ./bin/dev running?)" if settings.is_local else ""
    if isinstance(error, StoreError):
        return str(error)  # names the operation and what the store said
    if isinstance(error, StoreUnavailable) and error.__cause__ is not None:
        error = error.__cause__  # the adapter's translation: say what DynamoDB said
    if isinstance(error, (PoolMissing, SeedError)):
        return str(error)
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return str(StoreError(details.get("Code", "error"), details.get("Message", ""), error.operation_name))
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        return f"cannot reach {settings.aws_endpoint_url or 'AWS'}{hint}"
    if isinstance(error, BotoCoreError):
        return str(error)
    # only loaded by the scripts that use PostgreSQL
    psycopg, lib_db = sys.modules.get("psycopg"), sys.modules.get("lib.db")
    if ((lib_db and isinstance(error, lib_db.DatabaseUnavailable))
            or (psycopg and isinstance(error, psycopg.OperationalError))):
        where = psycopg.conninfo.conninfo_to_dict(settings.connection_url) if psycopg else {}
        target = f"{where.get('host', '?')}:{where.get('port', 5432)}/{where.get('dbname', '')}"
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"cannot reach PostgreSQL at {target}: {first}{hint}"
    return None


def yes_option(fn: Callable) -> Callable:
    return click.option("--yes", is_flag=True, default=False,
                        help="Do not ask for confirmation (with --prod).")(fn)


def confirm_destructive(prod: bool, what: str, yes: bool = False, where: str | None = None) -> None:
    """Against AWS (or `where`, another target that is not the local stack's), a destructive
    action asks first; with no terminal to ask, it refuses."""
    target = "on AWS" if prod else where
    if target is None or yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException(f"refusing to {what} {target} without confirmation (no terminal; "
                                   "pass --yes if you really mean it)")
    if not click.confirm(f"This will {what} {target}. Continue?", default=False):
        raise click.Abort()


def refuse_prod(prod: bool, what: str) -> None:
    if prod:
        raise click.ClickException(f"{what} runs against the local stack only")


def ddb_client(settings: Settings) -> Any:
    return aws.client(settings, "dynamodb")


def cognito_client(settings: Settings) -> Any:
    return aws.client(settings, "cognito-idp")


def user_pool_id(settings: Settings, client: Any | None = None) -> str:
    """The configured pool id, or locally the pool found by its name."""
    if settings.cognito_user_pool_id:
        return settings.cognito_user_pool_id
    if not settings.is_local:
        raise click.ClickException("AWS_COGNITO_USER_POOL_ID is not set")
    return local_cognito.find_pool(client or cognito_client(settings), local())


def open_db(settings: Settings) -> Any:
    from lib.db import Db  # psycopg is only loaded by the scripts that need PostgreSQL

    if not settings.connection_url:
        raise click.ClickException("--prod needs PROD_CONNECTION_URL to be set")
    return Db(settings)
