"""Starting the local stack's pieces, as ./bin/dev, the tests and the benchmark do: PostgreSQL,
moto, the schemas and seed data, the stream worker and the API under gunicorn."""
from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from lib import aws, cognito, db as pg
from lib.config import ROOT, Settings
from lib.db import Db
from lib.conversations import table_setup
from lib.ddb import Ddb
from devstack import assets as local_assets, cognito as local_cognito, seed as local_seed
from devstack.harsh import Harshness
from devstack.moto import LocalMoto
from devstack.postgres import LocalPostgres
from devstack.processes import Stack, StackError, ensure_port_free, free_port, stop_process, wait_http
from devstack.settings import LocalSettings
from lib.users import UserStore
from services.link_cognito_users import LinkCognitoUsers

log = logging.getLogger(__name__)

# gunicorn's settings for the API, shared with the Dockerfile
GUNICORN_CONFIG = ROOT / "gunicorn.conf.py"

# What load_data reports as it goes: (component, detail), e.g. ("seed", "written").
Report = Callable[[str, str], None]


def _quiet(component: str, detail: str) -> None:
    log.info("%s: %s", component, detail)


def start_postgres(local: LocalSettings, stack: Stack, data_dir: Path | None = None,
                   port: int | None = None) -> LocalPostgres:
    """Embedded PostgreSQL (data kept in `data_dir`), stopped with the stack."""
    postgres = LocalPostgres(data_dir or local.pg_data, port or local.pg_port)
    stack.add("postgres", None, postgres.stop)
    postgres.start()
    stack.processes["postgres"] = postgres.proc  # type: ignore[assignment]
    return postgres


def start_moto(port: int, stack: Stack, log_file: Path | None,
               harshness: Harshness | None = None, state_file: Path | None = None,
               sign_up_database: str | None = None) -> LocalMoto:
    """moto's server, stopped with the stack (harsh as `harshness`, else as the environment says;
    its data kept in `state_file` across restarts, if given; its pool's sign-ups checked by the
    sign-up Lambda against `sign_up_database`, if given)."""
    moto = LocalMoto(port, log_file, harshness, state_file, sign_up_database)
    stack.add("moto", None, moto.stop)
    moto.start()
    stack.processes["moto"] = moto.proc  # type: ignore[assignment]
    return moto


def database_url(postgres: LocalPostgres) -> str:
    """The app's database on this embedded PostgreSQL."""
    return LocalSettings(pg_port=postgres.port).database_url


def load_data(settings: Settings, local: LocalSettings, cognito_optional: bool = False,
              report: Report = _quiet) -> Settings:
    """Schemas and seeds, each only when missing; locally also the Cognito pool, its users and
    their link to PostgreSQL. Returns settings with the pool's ids.

    `cognito_optional`: an external endpoint (DynamoDB Local, say) may do no Cognito at all; the
    API then runs without sign-in instead of not at all."""
    pg.setup_database(settings.connection_url)
    report("schema", f"database {pg.database_name(settings.connection_url)} ready")
    if not settings.is_local:
        return settings
    db = Db(settings)
    try:
        try:
            settings = load_cognito(settings, local, db)
        except (BotoCoreError, ClientError) as error:
            if not cognito_optional:
                raise
            log.warning("no Cognito at %s: %s", settings.aws_endpoint_url, error)
            report("cognito", f"none at {settings.aws_endpoint_url}: signed-in routes answer 401")
        ddb = Ddb(settings)
        for step in table_setup.set_up_table(ddb):  # completes a table a run left half-made
            log.info("table %s: %s", settings.ddb_table, step)
        items, _ = local_seed.seed(ddb, db)
    finally:
        db.close()
    report("seed", f"users and conversation {'written' if items else 'already present'}")
    try:
        bucket, _ = local_assets.set_up(settings)
    except (BotoCoreError, ClientError) as error:
        if not cognito_optional:
            raise
        log.warning("no S3 at %s: %s", settings.endpoint_for("s3"), error)
        report("assets", f"no S3 at {settings.endpoint_for('s3')}: avatar uploads answer 503")
        return settings
    report("assets", f"bucket {bucket}: uploads notified to the avatar Lambda")
    return settings.with_(assets_bucket=bucket)


def load_cognito(settings: Settings, local: LocalSettings, db: Db) -> Settings:
    """The local pool, its users (every PostgreSQL user) and their link to PostgreSQL by `sub`."""
    pool_id, client_id = local_cognito.ensure_pool(settings, local)
    settings = settings.with_(cognito_user_pool_id=pool_id, cognito_client_id=client_id)
    claim_links(db, settings.endpoint_for("cognito-idp") or "")
    local_cognito.seed_users(settings, db, local)
    client = aws.client(settings, "cognito-idp")
    # the local pool is made from these very users, anew whenever moto starts empty: re-link
    LinkCognitoUsers.run(UserStore(db), cognito.pool_users(client, pool_id), replace=True)
    return settings


# Which local Cognito endpoint the database's users are linked to: a table of the local stack's
# own, never of the app's schema.
_LINKS_TABLE = """CREATE TABLE IF NOT EXISTS public.local_stack_links (
  only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
  cognito_endpoint TEXT NOT NULL,
  linked_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now())"""


def claim_links(db: Db, endpoint: str) -> None:
    """Record that this database's users are linked to the local pool at `endpoint`, before they
    are re-linked to it. Refused while another local stack's Cognito that they are linked to still
    answers: a second ./bin/dev pointed at the first one's PostgreSQL would otherwise re-link every
    user to its own pool, and the first stack's users would get `409 email_taken`. A stack that is
    gone (its endpoint does not answer) leaves its claim to the next."""
    with db.connection() as conn, conn.transaction():
        conn.execute(_LINKS_TABLE)
        conn.execute("LOCK TABLE public.local_stack_links")
        row = conn.execute("SELECT cognito_endpoint FROM public.local_stack_links").fetchone()
        if row and row[0] != endpoint and answers(row[0]):
            raise StackError(f"this database's users are linked to the local Cognito at {row[0]}, "
                             f"which still answers (another ./bin/dev?): stop that stack, or give this "
                             f"one a database of its own (LOCAL_PG_PORT, LOCAL_PG_DATA)")
        conn.execute("INSERT INTO public.local_stack_links (cognito_endpoint) VALUES (%s) "
                     "ON CONFLICT (only_row) DO UPDATE SET cognito_endpoint = EXCLUDED.cognito_endpoint, "
                     "linked_at = now()", [endpoint])


_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "https": 443}


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)


def answers(url: str) -> bool:
    """Whether something accepts connections at the URL's host and port (within a second)."""
    try:
        with socket.create_connection(_address(url), timeout=1):
            return True
    except OSError:
        return False


def wait_for_stores(settings: Settings, timeout: float = 120, report: Report = _quiet) -> None:
    """Wait until PostgreSQL and every configured AWS endpoint accept connections: stores started
    beside this process (docker compose starts them together) may still be starting."""
    urls = {"postgres": settings.connection_url}
    for service in ("dynamodb", "dynamodbstreams", "cognito-idp"):
        endpoint = settings.endpoint_for(service)
        if endpoint:
            urls[service] = endpoint
    deadline = time.monotonic() + timeout
    for name, url in urls.items():
        while not answers(url):
            if time.monotonic() > deadline:
                host, port = _address(url)
                raise StackError(f"{name} at {host}:{port} did not answer within {timeout:.0f} s")
            time.sleep(1)
    report("stores", ", ".join(f"{name} answers" for name in urls))


def start_stores(stack: Stack, folder: Path) -> Settings:
    """PostgreSQL (data in `folder`) and moto on free ports of loopback, with schemas and the
    usual seed: the tests' and the benchmark's stack. moto starts kind (not harsh, whatever the
    environment says): the tests turn harshness on for the flows they exercise."""
    postgres = start_postgres(LocalSettings(), stack, folder / "pgdata", free_port())
    moto = start_moto(free_port(), stack, folder / "moto.log", Harshness(),
                      sign_up_database=database_url(postgres))
    local = LocalSettings(pg_data=postgres.data_dir, pg_port=postgres.port, aws_port=moto.port)
    base = Settings(connection_url=database_url(postgres), aws_endpoint_url=moto.url)
    return load_data(base, local)


def api_env(settings: Settings) -> dict[str, str]:
    """The environment the API runs with, serving `settings`."""
    env = dict(os.environ)
    env.update({
        "CONNECTION_URL": settings.connection_url,
        "AWS_DEFAULT_REGION": settings.aws_region,
        "DDB_MESSAGE_TABLE": settings.ddb_table,
        "FRONTEND_URL": settings.frontend_url,
        "CRUDDUR_FRONTEND": settings.frontend,
        **({"ASSETS_BUCKET": settings.assets_bucket} if settings.assets_bucket else {}),
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
        env.update(aws.local_credentials(env))
    return env


def gunicorn_command(port: int, workers: int | None = None, connections: int | None = None,
                     python: str = sys.executable, chdir: Path = ROOT,
                     app: str = "app:create_app()") -> list[str]:
    """The API under gunicorn as ./bin/dev, the tests and the benchmark serve it: the settings of
    `gunicorn.conf.py`, as the Dockerfile serves it, on 127.0.0.1:`port`, with `workers` and
    `connections` per worker when given (else WEB_WORKERS and WEB_CONNECTIONS, or its defaults).
    The benchmark serves the bootcamp's backend with the same settings (`python`, `chdir`, `app`)."""
    return [python, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG),
            "--bind", f"127.0.0.1:{port}",
            *(["--workers", str(workers)] if workers else []),
            *(["--worker-connections", str(connections)] if connections else []),
            "--chdir", str(chdir), app]


def spawn(command: list[str], env: dict[str, str], log_file: Path | None = None) -> subprocess.Popen:
    """A process of the stack in a session of its own (so that stopping it stops its children),
    its output appended to `log_file`, or left on this terminal without one."""
    out = open(log_file, "ab") if log_file else None
    try:
        return subprocess.Popen(command, env=env, stdout=out,
                                stderr=subprocess.STDOUT if out else None, start_new_session=True)
    finally:
        if out:
            out.close()


def start_api(settings: Settings, stack: Stack, port: int, workers: int | None = None,
              env: dict[str, str] | None = None, log_file: Path | None = None,
              app: str = "app:create_app()", name: str = "api") -> str:
    """The API under gunicorn, as ./bin/dev serves it; returns its URL once its health check
    answers. With `app` and `name`, another app of this project served the same way (the
    benchmark's floor app)."""
    ensure_port_free(port, name)
    proc = spawn(gunicorn_command(port, workers, app=app), {**api_env(settings), **(env or {})}, log_file)
    stack.add(name, proc, lambda: stop_process(proc))
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/api/health-check", proc, name)
    return url


def start_stream_worker(settings: Settings, stack: Stack, checkpoint: Path | None = None,
                        log_file: Path | None = None, assets_port: int | None = None) -> subprocess.Popen | None:
    """Locally nothing invokes the stream's Lambdas, so a worker feeds them the table's stream
    (and the avatar Lambda its queue; with `assets_port`, it serves the avatars there as
    CloudFront would); the stack restarts it, with backoff, whenever it exits (its checkpoints
    say where to go on)."""
    if not settings.is_local:
        return None
    env = api_env(settings)
    if assets_port:
        env[local_assets.CDN_PORT_ENV] = str(assets_port)
    if checkpoint is not None:
        env["STREAM_WORKER_CHECKPOINT"] = str(checkpoint)
    return stack.supervise("stream", lambda: spawn([sys.executable, "-m", "devstack.stream_worker"],
                                                   env, log_file))
