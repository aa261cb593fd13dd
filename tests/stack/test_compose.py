"""docker-compose.yml (issue 26, item 6): `docker compose up` alone gives what ./bin/dev gives.

There is no Docker engine here. The file is read by a real Compose implementation's `config`
(tests/compose.py), which parses, interpolates and validates it as `up` would; then the commands
of its own services (moto's server for Cognito, the one-shot setup, the stream worker) are run
here as Compose would run them, with their resolved environments, the hostnames of the compose
network pointed at this machine's stores. What only an engine can show (the images building,
the health checks passing inside containers, DynamoDB Local itself) is not run: the README says so.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from lib import config
from lib.config import ROOT
from lib.ddb import Ddb
from devstack import free_port, stop_process
from devstack.moto import MOTO_ENV
from tests import compose

LOCAL_SERVICES = {"aws", "setup", "stream"}


@pytest.fixture(scope="module")
def model() -> dict:
    return yaml.safe_load(compose.config())


def test_compose_up_starts_the_whole_local_stack_in_order(model):
    services = model["services"]
    assert set(services) == {"db", "dynamodb-local", "aws", "setup", "stream", "backend"}
    assert services["setup"]["command"] == ["python", "-m", "cli.dev", "--load-only"]
    assert services["stream"]["command"] == ["python", "-m", "devstack.stream_worker"]
    assert services["aws"]["command"][:3] == ["python", "-m", "devstack.moto_server"]
    # the stores are healthy before the setup runs; the API and the worker start after it succeeded
    healthy = {"condition": "service_healthy"}
    assert services["setup"]["depends_on"]["db"] == services["setup"]["depends_on"]["aws"] == healthy
    for name in ("backend", "stream"):
        assert services[name]["depends_on"] == {"setup": {"condition": "service_completed_successfully"}}
    assert services["setup"].get("restart", "no") == "no"
    assert services["stream"]["restart"] == services["backend"]["restart"] == "unless-stopped"
    for name in ("db", "aws", "backend"):
        assert services[name]["healthcheck"]["test"], name
    assert "/api/ready" in " ".join(services["backend"]["healthcheck"]["test"])


def test_nothing_is_published_beyond_loopback(model):
    published = {name: service.get("ports", []) for name, service in model["services"].items()}
    assert published["backend"] and published["aws"]  # the API, and Cognito for the browser
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_the_images_the_api_from_the_production_stage_the_rest_from_the_local_one(model):
    services = model["services"]
    assert services["backend"]["build"]["target"] == "api"
    for name in LOCAL_SERVICES:
        assert services[name]["build"]["target"] == "local", name
    stages = [line.split()[-1] for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("FROM ")]
    assert stages == ["runtime", "local", "api"], "the production image is the default (last) stage"


def test_the_services_share_the_stores_and_the_api_reads_them_as_the_app_does(model):
    services = model["services"]
    backend = services["backend"]["environment"]
    settings = config.load(backend)
    assert settings.is_local and settings.endpoint_for("cognito-idp") == "http://aws:4566"
    assert settings.endpoint_for("dynamodb") == settings.endpoint_for("dynamodbstreams") == (
        "http://dynamodb-local:8000")
    for name in ("setup", "stream"):
        env = services[name]["environment"]
        for key in ("CONNECTION_URL", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB",
                    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "DDB_MESSAGE_TABLE", "AWS_DEFAULT_REGION"):
            assert env[key] == backend[key], (name, key)
    # avatars: the API signs for S3 as the browser reaches moto; the worker processes the same bucket
    assert settings.assets_bucket == services["stream"]["environment"]["ASSETS_BUCKET"]
    assert settings.endpoint_for("s3") == "http://localhost:4566"
    assert f"127.0.0.1:{services['stream']['environment']['LOCAL_ASSETS_PORT']}:" in services["stream"]["ports"][0]
    aws = services["aws"]["environment"]
    assert MOTO_ENV.items() <= aws.items(), "the pool's ids as ./bin/dev's moto makes them"
    assert aws["LOCAL_SIGN_UP_DATABASE"] == backend["CONNECTION_URL"]
    # the worker's position and moto's data outlive their containers
    for name, path in (("stream", services["stream"]["environment"]["STREAM_WORKER_CHECKPOINT"]),
                       ("aws", aws["LOCAL_MOTO_STATE"])):
        [volume] = services[name]["volumes"]
        assert path.startswith(volume.split(":")[1] + "/") and volume.split(":")[0] in model["volumes"]


def test_passwords_are_local_defaults_that_the_environment_replaces():
    default = yaml.safe_load(compose.config())["services"]
    chosen = yaml.safe_load(compose.config({"POSTGRES_PASSWORD": "chosen-pw",
                                            "CURSOR_SECRET": "chosen-secret"}))["services"]
    assert "local-only" in default["db"]["environment"]["POSTGRES_PASSWORD"]
    assert "local-only" in default["backend"]["environment"]["CURSOR_SECRET"]
    assert chosen["db"]["environment"]["POSTGRES_PASSWORD"] == "chosen-pw"
    assert chosen["backend"]["environment"]["CURSOR_SECRET"] == "chosen-secret"
    for name in ("backend", "setup", "stream"):
        assert ":chosen-pw@db:" in chosen[name]["environment"]["CONNECTION_URL"], name
    assert ":chosen-pw@db:" in chosen["aws"]["environment"]["LOCAL_SIGN_UP_DATABASE"]


# -- the services' own commands, run here ---------------------------------------------------------
def on_this_machine(env: dict, hosts: dict[str, str]) -> dict[str, str]:
    """A service's environment with the compose network's addresses replaced by this machine's."""
    out = {}
    for key, value in env.items():
        value = str(value)
        for theirs, ours in hosts.items():
            value = value.replace(theirs, ours)
        out[key] = value
    return {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
            "PYTHONPATH": str(ROOT), **out}


def test_the_services_commands_give_what_bin_dev_gives(settings, tmp_path):
    """moto's server from the `aws` service's command answers its health check; the `setup`
    service's command loads a fresh database and table and prints the very pool ids the backend
    is given; the `stream` service's command then follows the new table's stream."""
    table = f"compose-{uuid.uuid4().hex[:8]}"
    services = yaml.safe_load(compose.config({"DDB_MESSAGE_TABLE": table}))["services"]
    port = free_port()
    pg = settings.connection_url.rsplit("/", 1)[0].split("@")[1]  # host:port of the test stack's
    database = f"compose_{uuid.uuid4().hex[:8]}"
    hosts = {"http://aws:4566": f"http://127.0.0.1:{port}",
             # DynamoDB Local's place taken by the test stack's moto
             "http://dynamodb-local:8000": settings.aws_endpoint_url,
             "@db:5432/cruddur": f"@{pg}/{database}",
             "/var/lib/cruddur": str(tmp_path)}
    aws_env = on_this_machine(services["aws"]["environment"], hosts)
    command = [sys.executable if part == "python" else part for part in services["aws"]["command"]]
    command[command.index("-p") + 1] = str(port)
    moto = subprocess.Popen(command, env=aws_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    worker = None
    try:
        check = [sys.executable if p == "python" else p.replace(":4566", f":{port}")
                 for p in services["aws"]["healthcheck"]["test"][1:]]
        deadline = time.monotonic() + 60
        while subprocess.run(check, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and moto.poll() is None, "moto's health check never passed"
            time.sleep(0.5)

        setup = subprocess.run([sys.executable if p == "python" else p for p in services["setup"]["command"]],
                               env=on_this_machine(services["setup"]["environment"], hosts),
                               capture_output=True, text=True, timeout=180, cwd=ROOT)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        backend = services["backend"]["environment"]
        assert f"REACT_APP_AWS_USER_POOLS_ID={backend['AWS_COGNITO_USER_POOL_ID']} " in setup.stdout
        assert f"REACT_APP_CLIENT_ID={backend['AWS_COGNITO_USER_POOL_CLIENT_ID']} " in setup.stdout
        assert "Auth.endpoint=http://localhost:4566 " in setup.stdout
        assert "ready  seed" in setup.stdout

        stream_env = on_this_machine(services["stream"]["environment"], hosts)
        # its published port, on this machine's loopback
        stream_env.update({"LOCAL_ASSETS_PORT": str(free_port()), "LOCAL_ASSETS_HOST": "127.0.0.1"})
        worker = subprocess.Popen([sys.executable if p == "python" else p for p in services["stream"]["command"]],
                                  env=stream_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True, cwd=ROOT)
        ddb = Ddb(settings.with_(ddb_table=table))
        deadline = time.monotonic() + 60
        while not Path(stream_env["STREAM_WORKER_CHECKPOINT"]).exists():
            assert time.monotonic() < deadline and worker.poll() is None, "the worker never checkpointed"
            time.sleep(0.2)
        assert ddb.describe()["StreamSpecification"]["StreamEnabled"]
    finally:
        stop_process(worker, signal.SIGTERM)
        stop_process(moto, signal.SIGTERM)
        Ddb(settings.with_(ddb_table=table)).delete_table()
        import psycopg
        with psycopg.connect(settings.connection_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
