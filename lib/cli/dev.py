"""./bin/dev: the whole backend on this machine, from nothing.

Starts embedded PostgreSQL and moto's server (unless real services are configured), loads schemas
and seed data when missing, and serves the API with gunicorn. Ctrl-C or SIGTERM stops everything.

Real services instead of embedded ones:
  CONNECTION_URL      use this PostgreSQL instead of the embedded one
  AWS_ENDPOINT_URL    use this endpoint (e.g. DynamoDB Local) instead of starting moto
  LOCAL_AWS=0         use real AWS (no endpoint override) instead of starting moto
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

import click

from lib import config
from lib.cli import common
from lib.config import ROOT, Settings
from lib.local_stack import LocalMoto, LocalPostgres, StackError, ensure_port_free, stop_process

log = logging.getLogger("bin.dev")
DATABASE = "cruddur"


@dataclass
class Stack:
    """Everything ./bin/dev started, so that it can all be stopped in reverse order."""

    stoppers: list[Callable[[], None]] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def add(self, name: str, proc: subprocess.Popen | None, stop: Callable[[], None]) -> None:
        if proc is not None:
            self.processes[name] = proc
        self.stoppers.append(stop)

    def stop(self) -> None:
        while self.stoppers:
            try:
                self.stoppers.pop()()
            except Exception:  # keep stopping the rest whatever one of them does
                log.exception("while stopping")

    def dead(self) -> str | None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                return f"{name} exited with code {proc.returncode}"
        return None


def ready(component: str, detail: str) -> None:
    click.echo(f"ready  {component:<9} {detail}", err=False)


def start_postgres(settings: Settings, stack: Stack) -> Settings:
    if os.environ.get("CONNECTION_URL"):
        ready("postgres", "external (CONNECTION_URL)")
        return settings
    pg = LocalPostgres(settings.local_pg_data, settings.local_pg_port)
    stack.add("postgres", None, pg.stop)
    pg.start()
    stack.processes["postgres"] = pg.proc  # type: ignore[assignment]
    url = f"postgresql://postgres@127.0.0.1:{pg.port}/{DATABASE}"
    where = pg.data_dir.relative_to(ROOT) if pg.data_dir.is_relative_to(ROOT) else pg.data_dir
    ready("postgres", f"{url} (data in {where})")
    return settings.with_(connection_url=url)


def check_ports(settings: Settings) -> None:
    """Fail at once, before starting anything, when a port of a component to start is taken."""
    if not os.environ.get("CONNECTION_URL"):
        ensure_port_free(settings.local_pg_port, "postgres")
    if not os.environ.get("AWS_ENDPOINT_URL") and os.environ.get("LOCAL_AWS") != "0":
        ensure_port_free(settings.local_aws_port, "moto")
    ensure_port_free(settings.port, "api")


def start_aws(settings: Settings, stack: Stack) -> Settings:
    if os.environ.get("AWS_ENDPOINT_URL"):
        ready("aws", f"external endpoint {settings.aws_endpoint_url}")
        return settings
    if os.environ.get("LOCAL_AWS") == "0":
        ready("aws", f"real AWS, region {settings.aws_region}")
        return settings
    moto = LocalMoto(settings.local_aws_port, ROOT / ".local" / "moto.log")
    stack.add("moto", None, moto.stop)
    moto.start()
    stack.processes["moto"] = moto.proc  # type: ignore[assignment]
    ready("moto", f"{moto.url} (DynamoDB, DynamoDB Streams, Cognito)")
    return settings.with_(aws_endpoint_url=moto.url)


def load_data(settings: Settings) -> Settings:
    """Schemas and seeds, each only when missing. Returns settings with the Cognito ids."""
    from lib.cli import db as db_cli, ddb as ddb_cli

    db_cli.setup(settings)
    ready("schema", f"database {db_cli.database_name(settings)} ready")
    if settings.is_local:
        db = common.open_db(settings)
        try:
            settings = load_cognito(settings, db)
            ddb_cli.create_table(settings)
            items, _ = ddb_cli.seed(settings, db, progress=False)
        finally:
            db.close()
        ready("seed", f"users and conversation {'written' if items else 'already present'}")
    return settings


def load_cognito(settings: Settings, db: object) -> Settings:
    """The local pool, its users, and their link to PostgreSQL by `sub`. An external endpoint
    (AWS_ENDPOINT_URL) may do no Cognito at all, as DynamoDB Local: the API then runs without
    sign-in instead of not at all."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lib.cli import cognito, db as db_cli

    try:
        pool_id, client_id = cognito.ensure_local_pool(settings)
        settings = settings.with_(cognito_user_pool_id=pool_id, cognito_client_id=client_id)
        cognito.seed_local_users(settings, db)
        db_cli.update_cognito_user_ids(settings)
    except (BotoCoreError, ClientError) as error:
        if not os.environ.get("AWS_ENDPOINT_URL"):
            raise
        log.warning("no Cognito at %s: %s", settings.aws_endpoint_url, error)
        ready("cognito", f"none at {settings.aws_endpoint_url}: signed-in routes answer 401")
    return settings


def app_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "CONNECTION_URL": settings.connection_url,
        "AWS_DEFAULT_REGION": settings.aws_region,
        "DDB_MESSAGE_TABLE": settings.ddb_table,
        "FRONTEND_URL": settings.frontend_url,
        "PYTHONPATH": str(ROOT),
    })
    # Every gunicorn worker must sign pagination cursors with the same secret.
    env.setdefault("CURSOR_SECRET", settings.cursor_secret or secrets.token_hex(32))
    for name, value in [("AWS_ENDPOINT_URL", settings.aws_endpoint_url),
                        ("AWS_COGNITO_USER_POOL_ID", settings.cognito_user_pool_id),
                        ("AWS_COGNITO_USER_POOL_CLIENT_ID", settings.cognito_client_id)]:
        if value:
            env[name] = value
    if settings.is_local:
        env.setdefault("AWS_ACCESS_KEY_ID", "test")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    return env


def gunicorn_command(port: int, workers: int | None = None, threads: int | None = None) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers or os.environ.get("WEB_WORKERS", "2")),
            "--threads", str(threads or os.environ.get("WEB_THREADS", "8")),
            "--worker-class", "gthread", "--access-logfile", "/dev/null",
            # no control socket: its default path (~/.gunicorn/gunicorn.ctl) is shared by every
            # gunicorn of the user, so two servers would take it from each other
            "--no-control-socket",
            "--chdir", str(ROOT), "app:create_app()"]


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise StackError(f"{what} did not answer {url} within {timeout:.0f}s")


def start_api(settings: Settings, stack: Stack) -> None:
    ensure_port_free(settings.port, "api")
    proc = subprocess.Popen(gunicorn_command(settings.port), env=app_env(settings), start_new_session=True)
    stack.add("api", proc, lambda: stop_process(proc))
    wait_http(f"http://127.0.0.1:{settings.port}/api/health-check", proc, "api")
    ready("api", f"http://127.0.0.1:{settings.port} (CORS for {settings.frontend_url})")


def start_stream_worker(settings: Settings, stack: Stack) -> None:
    """Locally nothing invokes the stream Lambda, so a worker feeds it the table's stream."""
    if not settings.is_local:
        return
    proc = subprocess.Popen([sys.executable, "-m", "lib.stream_worker"], env=app_env(settings),
                            start_new_session=True)
    stack.add("stream", proc, lambda: stop_process(proc))
    ready("stream", "worker applying the table's stream to group rows (bin/ddb/stream-worker)")


def print_frontend_config(settings: Settings) -> None:
    if not settings.is_local:
        return
    click.echo(f"frontend REACT_APP_AWS_USER_POOLS_ID={settings.cognito_user_pool_id} "
               f"REACT_APP_CLIENT_ID={settings.cognito_client_id} "
               f"Auth.endpoint={settings.aws_endpoint_url} "
               f"password of seeded users: {config.LOCAL_SEED_PASSWORD}")


def raise_keyboard_interrupt(signum: int, frame: object) -> None:
    """A signal handler: SIGTERM stops a foreground command the way Ctrl-C does."""
    raise KeyboardInterrupt


@click.command()
def main() -> None:
    """Start the local stack and serve the API until Ctrl-C or SIGTERM."""
    common.setup_logging()
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    settings = config.load()
    stack = Stack()
    code = 0
    try:
        check_ports(settings)
        settings = start_postgres(settings, stack)
        settings = start_aws(settings, stack)
        settings = load_data(settings)
        start_stream_worker(settings, stack)
        start_api(settings, stack)
        print_frontend_config(settings)
        while True:
            problem = stack.dead()
            if problem:
                raise StackError(problem)
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
