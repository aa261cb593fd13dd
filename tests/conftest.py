"""The local stack for the suite: embedded PostgreSQL and moto's server, started once per run on
free ports, with the same schemas and seed data as ./bin/dev."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from lib import config
from lib.cli import ddb as ddb_cli
from lib.cli.dev import DATABASE, load_data
from lib.config import Settings
from lib.ddb import Ddb
from lib.local_stack import LocalMoto, LocalPostgres, free_port


def postgres_data_dir() -> Path:
    """A new directory for a PostgreSQL data folder.

    Not under pytest's own temporary folder: pytest keeps that private to its user (and resets
    it so when another run starts), while PostgreSQL may run as another user (see local_stack)."""
    return Path(tempfile.mkdtemp(prefix="cruddur-test-pg-")) / "data"


@pytest.fixture
def pg_data_dir() -> Path:
    path = postgres_data_dir()
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory):
    """(postgres, moto), running for the whole session."""
    data = postgres_data_dir()
    pg = LocalPostgres(data, free_port()).start()
    moto = LocalMoto(free_port(), tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield pg, moto
    moto.stop()
    pg.stop()
    shutil.rmtree(data.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(local_stack) -> Settings:
    """Settings of the seeded local stack. Also exported to os.environ, for subprocesses (the
    scripts, gunicorn) that read their configuration from the environment."""
    pg, moto = local_stack
    base = config.load({}).with_(
        connection_url=f"postgresql://postgres@127.0.0.1:{pg.port}/{DATABASE}",
        aws_endpoint_url=moto.url,
        local_aws_port=moto.port,
        local_pg_port=pg.port,
    )
    os.environ.update({
        "CONNECTION_URL": base.connection_url,
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_DEFAULT_REGION": base.aws_region,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "DDB_MESSAGE_TABLE": base.ddb_table,
    })
    seeded = load_data(base)
    os.environ["AWS_COGNITO_USER_POOL_ID"] = seeded.cognito_user_pool_id or ""
    os.environ["AWS_COGNITO_USER_POOL_CLIENT_ID"] = seeded.cognito_client_id or ""
    return seeded


@pytest.fixture
def fresh_table(settings: Settings) -> Settings:
    """Settings pointing at a new, empty messages table of the same shape, for tests that write."""
    fresh = settings.with_(ddb_table=f"test-{uuid.uuid4().hex[:12]}")
    ddb_cli.create_table(fresh)
    yield fresh
    Ddb(fresh).client.delete_table(TableName=fresh.ddb_table)


@pytest.fixture
def repo_root() -> Path:
    return config.ROOT


class Api:
    """The API served by gunicorn over the test stack, as ./bin/dev serves it (one worker, so
    that its call counters at /api/_metrics are the whole server's)."""

    def __init__(self, url: str, tokens: dict[str, str]):
        self.url = url
        self.tokens = tokens
        self.session = requests.Session()

    def headers(self, handle: str | None = None, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if handle:
            headers["Authorization"] = f"Bearer {self.tokens[handle]}"
        return headers

    def get(self, path: str, handle: str | None = None, **kwargs) -> requests.Response:
        headers = {**self.headers(handle), **kwargs.pop("headers", {})}
        return self.session.get(self.url + path, headers=headers, timeout=10, **kwargs)

    def post(self, path: str, handle: str | None = None, **kwargs) -> requests.Response:
        headers = {**self.headers(handle), **kwargs.pop("headers", {})}
        return self.session.post(self.url + path, headers=headers, timeout=10, **kwargs)

    def metrics(self) -> dict[str, int]:
        return self.session.get(self.url + "/api/_metrics", timeout=10).json()


@pytest.fixture(scope="session")
def api(settings: Settings):
    """A real gunicorn server of the app over the seeded local stack, with Cognito tokens of the
    seeded users."""
    from lib.cli.cognito import access_token
    from lib.cli.dev import app_env, gunicorn_command, wait_http
    from lib.local_stack import stop_process

    port = free_port()
    env = {**app_env(settings), "CURSOR_SECRET": "test-cursor-secret", "METRICS_ENABLED": "1"}
    proc = subprocess.Popen(gunicorn_command(port, workers=1, threads=8), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/health-check", proc, "api")
        tokens = {h: access_token(settings, h) for h in ("andrewbrown", "bayko", "londo")}
        yield Api(url, tokens)
    finally:
        stop_process(proc)
