"""The local stack for the suite: embedded PostgreSQL and moto's server, started once per run on
free ports, with the same schemas and seed data as ./bin/dev (devstack.start_stores)."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from lib import config
from lib.config import Settings
from lib.ddb import Ddb
from devstack import LocalSettings, Stack, access_token, free_port, start_api, start_stores
from tests import tables


def private_temp_dir(prefix: str) -> Path:
    """A new directory for a PostgreSQL data folder.

    Not under pytest's own temporary folder: pytest keeps that private to its user (and resets
    it so when another run starts), while PostgreSQL may run as another user (see devstack)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture
def pg_data_dir() -> Path:
    path = private_temp_dir("cruddur-test-pg-") / "data"
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


# The fast tier: every test in tests/fast/ (the domain, the services over in-memory twins of the
# adapters, the rules read from files), and the in-memory halves of the contract tests in
# tests/stack/. tests/stack/ holds everything that needs PostgreSQL, moto, a server or a browser.
FAST = Path(__file__).resolve().parent / "fast"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if FAST in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.fast)


# The fixtures that start the local stores (and those that need them).
STORE_FIXTURES = {"settings", "fresh_table", "pg_data_dir", "tls_database"}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked fast (`./bin/test -m fast`) may not start PostgreSQL or moto."""
    used = STORE_FIXTURES & set(getattr(item, "fixturenames", ()))
    if item.get_closest_marker("fast") and used:
        pytest.fail(f"a fast test may not use {sorted(used)}", pytrace=False)


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings of the seeded local stack, running for the whole session. Also exported to
    os.environ, for subprocesses (the scripts, gunicorn) that read their configuration from the
    environment."""
    folder = private_temp_dir("cruddur-test-stack-")
    stack = Stack()
    stack.on_stop(lambda: shutil.rmtree(folder, ignore_errors=True))
    try:
        seeded = start_stores(stack, folder)
        os.environ.update({
            "CONNECTION_URL": seeded.connection_url,
            "AWS_ENDPOINT_URL": seeded.aws_endpoint_url or "",
            "LOCAL_AWS_PORT": seeded.aws_endpoint_url.rsplit(":", 1)[1],
            "AWS_DEFAULT_REGION": seeded.aws_region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "DDB_MESSAGE_TABLE": seeded.ddb_table,
            "AWS_COGNITO_USER_POOL_ID": seeded.cognito_user_pool_id or "",
            "AWS_COGNITO_USER_POOL_CLIENT_ID": seeded.cognito_client_id or "",
        })
        yield seeded
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def local() -> LocalSettings:
    return LocalSettings()


@pytest.fixture
def harsh(settings: Settings):
    """The session's local DynamoDB made harsh for one test: as the LOCAL_HARSH* variables say if
    any is set, else every knob at its default (devstack/harsh.py) but throttling at 2 %: a
    request that botocore's three attempts all see throttled is a 503 that these tests would
    have to retry (8 in a million at 2 %, 1 in 8,000 at 5 %). Call the fixture's value to change
    knobs (`harsh(gsi_lag_ms=2000)`); all are off again after the test."""
    from devstack import harsh as harshness

    def change(**knobs: float) -> harshness.Harshness:
        return harshness.set_remote(settings.aws_endpoint_url, **knobs)

    chosen = harshness.from_env()
    change(**vars(chosen if chosen.on else harshness.Harshness(**{**harshness.DEFAULTS, "throttle": 0.02})))
    try:
        yield change
    finally:
        change(**vars(harshness.Harshness()))


@pytest.fixture
def fresh_table(settings: Settings) -> Settings:
    """Settings pointing at a new, empty messages table of the same shape, for tests that write."""
    fresh = settings.with_(ddb_table=f"test-{uuid.uuid4().hex[:12]}")
    tables.create_table(Ddb(fresh))
    yield fresh
    Ddb(fresh).delete_table()


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
    stack = Stack()
    try:
        url = start_api(settings, stack, free_port(), workers=1,
                        env={"CURSOR_SECRET": "test-cursor-secret", "METRICS_ENABLED": "1"})
        yield Api(url, {h: access_token(settings, h) for h in ("andrewbrown", "bayko", "londo")})
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def tls_database(tmp_path_factory):
    """A PostgreSQL speaking TLS as RDS does, with its authority's certificate as the bundle."""
    from tests.tls_postgres import TlsPostgres, authority

    ca = authority("Test RDS Root CA")
    folder = tmp_path_factory.mktemp("tls")
    (folder / "bundle.pem").write_bytes(ca.pem)
    server = TlsPostgres(folder / "data", ca).start()
    try:
        yield server.url, folder / "bundle.pem"
    finally:
        server.stop()
