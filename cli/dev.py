"""./bin/dev: the whole backend on this machine, from nothing.

Starts embedded PostgreSQL and moto's server (unless real services are configured), loads schemas
and seed data when missing, and serves the API with gunicorn. Ctrl-C or SIGTERM stops everything.

Real services instead of embedded ones:
  CONNECTION_URL      use this PostgreSQL instead of the embedded one
  AWS_ENDPOINT_URL    use this endpoint (e.g. DynamoDB Local) instead of starting moto
  LOCAL_AWS=0         use real AWS (no endpoint override) instead of starting moto

`--load-only` starts nothing: it waits for the stores the environment names, loads them as
./bin/dev would, prints the frontend's settings and exits (docker-compose.yml's setup service).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time

import click

from lib import config
from cli import common
from lib.config import ROOT, Settings
from devstack import harsh
from devstack import (LocalSettings, Stack, StackError, database_url, ensure_port_free,
                       load_data, sigterm_as_keyboard_interrupt, start_api, start_moto,
                       start_postgres, start_stream_worker, wait_for_stores)

log = logging.getLogger("bin.dev")


def ready(component: str, detail: str) -> None:
    click.echo(f"ready  {component:<9} {detail}", err=False)


def check_ports(settings: Settings, local: LocalSettings) -> None:
    """Fail at once, before starting anything, when a port of a component to start is taken."""
    if not os.environ.get("CONNECTION_URL"):
        ensure_port_free(local.pg_port, "postgres")
    if not os.environ.get("AWS_ENDPOINT_URL") and os.environ.get("LOCAL_AWS") != "0":
        ensure_port_free(local.aws_port, "moto")
    ensure_port_free(settings.port, "api")
    ensure_port_free(local.assets_port, "assets")


def postgres(settings: Settings, local: LocalSettings, stack: Stack) -> Settings:
    if os.environ.get("CONNECTION_URL"):
        ready("postgres", "external (CONNECTION_URL)")
        return settings
    pg = start_postgres(local, stack)
    url = database_url(pg)
    where = pg.data_dir.relative_to(ROOT) if pg.data_dir.is_relative_to(ROOT) else pg.data_dir
    ready("postgres", f"{url} (data in {where})")
    return settings.with_(connection_url=url)


def aws(settings: Settings, local: LocalSettings, stack: Stack,
        harshness: harsh.Harshness) -> Settings:
    if os.environ.get("AWS_ENDPOINT_URL"):
        ready("aws", f"external endpoint {settings.aws_endpoint_url}")
        return settings
    if os.environ.get("LOCAL_AWS") == "0":
        ready("aws", f"real AWS, region {settings.aws_region}")
        return settings
    moto = start_moto(local.aws_port, stack, ROOT / ".local" / "moto.log", state_file=local.moto_state,
                      sign_up_database=settings.connection_url)
    where = local.moto_state.relative_to(ROOT) if local.moto_state.is_relative_to(ROOT) else local.moto_state
    ready("moto", f"{moto.url} (DynamoDB, DynamoDB Streams, Cognito, S3, SQS; data kept in {where})"
          + (f"; harsh: {harsh.describe(harshness)}" if harshness.on else "")
          + (f"; the saved data could not be read, so moto started empty (the file is kept as "
             f"{moto.state_set_aside.name})" if moto.state_set_aside else ""))
    return settings.with_(aws_endpoint_url=moto.url)


def print_frontend_config(settings: Settings, local: LocalSettings) -> None:
    if not settings.is_local:
        return
    click.echo(f"frontend CRUDDUR_FRONTEND={settings.frontend} "
               f"REACT_APP_AWS_USER_POOLS_ID={settings.cognito_user_pool_id} "
               f"REACT_APP_CLIENT_ID={settings.cognito_client_id} "
               f"Auth.endpoint={local.public_aws_url or settings.endpoint_for('cognito-idp')} "
               f"REACT_APP_API_GATEWAY_ENDPOINT_URL=http://127.0.0.1:{settings.port} "
               f"password of seeded users: {local.seed_password}")


def load_stores(settings: Settings, local: LocalSettings) -> int:
    """Load the stores the environment names, which run elsewhere (docker compose's)."""
    if not os.environ.get("CONNECTION_URL") or not settings.is_local:
        click.echo("bin/dev --load-only: set CONNECTION_URL and AWS_ENDPOINT_URL to the stores to load",
                   err=True)
        return 2
    try:
        wait_for_stores(settings, report=ready)
        settings = load_data(settings, local, report=ready)
    except StackError as error:
        click.echo(f"bin/dev: {error}", err=True)
        return 1
    print_frontend_config(settings, local)
    return 0


@click.command()
@click.option("--load-only", is_flag=True,
              help="Start nothing: load schemas, seed data and the local pool into the stores the "
                   "environment names, print the frontend's settings, exit.")
def main(load_only: bool) -> None:
    """Start the local stack and serve the API until Ctrl-C or SIGTERM."""
    common.setup_logging()
    sigterm_as_keyboard_interrupt()
    try:
        settings = config.load()
        local = common.local()
        # moto's server reads it too, from the same environment; refused here before anything starts
        harshness = harsh.from_env()
    except config.ConfigError as error:
        click.echo(f"bin/dev: {error}", err=True)
        sys.exit(1)
    if load_only:
        sys.exit(load_stores(settings, local))
    stack = Stack()
    code = 0
    try:
        check_ports(settings, local)
        settings = postgres(settings, local, stack)
        settings = aws(settings, local, stack, harshness)
        settings = load_data(settings, local, cognito_optional=bool(os.environ.get("AWS_ENDPOINT_URL")),
                             report=ready)
        if start_stream_worker(settings, stack, assets_port=local.assets_port):
            ready("stream", "worker applying the table's stream to group rows and live events (bin/ddb/stream-worker), "
                            f"and avatar uploads to avatars served at http://127.0.0.1:{local.assets_port}/avatars/")
        url = start_api(settings, stack, settings.port)
        ready("api", f"{url} (CORS for {settings.frontend_url})")
        print_frontend_config(settings, local)
        while True:
            problem = stack.dead()
            if problem:
                raise StackError(problem)
            for event in stack.tend():  # a crashed stream worker comes back, the rest goes on
                log.warning("%s", event)
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("stopping", err=True)
    except StackError as error:
        click.echo(f"bin/dev: {error}", err=True)
        code = 1
    except Exception as error:  # one line, not a trace: the log above says the rest
        click.echo(f"bin/dev: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", err=True)
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
    sys.exit(code)


if __name__ == "__main__":
    main(prog_name="bin/dev")
