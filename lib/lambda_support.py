"""What the project's Lambdas share: their JSON log lines, the messages table they work on (its
name and index from their environment, and a DynamoDB client), and the PostgreSQL connection of
those that reach the database. bin/aws/deploy packages this file beside each
handler."""
from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping


class JsonFormatter(logging.Formatter):
    """One JSON object per line: CloudWatch Logs Insights and metric filters read its fields. A
    record's `extra={"fields": {...}}` become the line's own keys."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def json_logger(name: str) -> logging.Logger:
    """The logger `name`, writing JSON lines to stderr at LOG_LEVEL (INFO)."""
    log = logging.getLogger(name)
    if not log.handlers:  # a handler file may be loaded more than once in one process (the local worker)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        # Our lines are already JSON; passing them to the root logger (Lambda's, or the worker's)
        # would print each twice, once wrapped in another format.
        log.propagate = False
    log.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    return log


# The certificate authorities of Amazon RDS, which bin/aws/deploy puts in the package of each
# Lambda that reaches PostgreSQL (beside this file's folder): a deployed Lambda talks to its
# database only over TLS, and only to a server whose certificate they signed for the host it
# asked for (sslmode=verify-full).
RDS_CA_BUNDLE = "rds-ca-bundle.pem"


def connect(env: Mapping[str, str] | None = None, **settings: Any) -> Any:
    """A PostgreSQL connection for a Lambda (autocommit; psycopg's `settings`, e.g. statement
    bounds as `options`). Deployed (the URL from CONNECTION_SECRET_ARN), it requires TLS with the
    server's certificate checked against the packaged RDS authorities, whatever the URL says;
    with CONNECTION_URL (the local stack, tests) it connects as the URL says."""
    import psycopg  # in the Lambdas' packages; not needed by the stream Lambda, which imports this file

    env = os.environ if env is None else env
    kwargs: dict[str, Any] = {"connect_timeout": 5, "autocommit": True, **settings}
    if env.get("CONNECTION_SECRET_ARN"):
        kwargs.update(sslmode="verify-full", sslrootcert=str(ca_bundle_path()))
    return psycopg.connect(connection_url(env), **kwargs)


class OneConnection:
    """A Lambda's PostgreSQL connection: one per container, made on first use (`connect` with
    `settings`) and kept for warm invocations, made again once it broke or was forgotten (after a
    database error, so that the next invocation starts afresh)."""

    def __init__(self, **settings: Any):
        self._settings = settings
        self._conn: Any = None

    def get(self) -> Any:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(**self._settings)
        return self._conn

    def forget(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


def ca_bundle_path() -> Path:
    """Where the package's RDS certificate bundle is: at its root, beside the handler."""
    return Path(__file__).resolve().parent.parent / RDS_CA_BUNDLE


def connection_url(env: Mapping[str, str] | None = None) -> str:
    """CONNECTION_URL, or the secret named by CONNECTION_SECRET_ARN (its SecretString: the URL, or
    JSON with a `url`), read at run time so that no password sits in the function's settings."""
    env = os.environ if env is None else env
    arn = env.get("CONNECTION_SECRET_ARN")
    if not arn:
        return env["CONNECTION_URL"]
    import boto3  # in Lambda's runtime; only this path needs it

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    if secret.lstrip().startswith("{"):
        return json.loads(secret)["url"]
    return secret


def dynamodb_client(env: Mapping[str, str] | None = None, connections: int = 10) -> Any:
    """A DynamoDB client (`client`)."""
    return client("dynamodb", env, connections)


def client(service: str, env: Mapping[str, str] | None = None, connections: int = 10) -> Any:
    """A client of `service`: region and optional endpoint from the environment, botocore's
    standard retry mode (throttling and transient errors are retried with backoff before we see
    them), and `connections` in its pool (one per thread that uses it at once)."""
    import boto3  # in Lambda's runtime (not needed by the sign-up Lambda, which imports this file)
    from botocore.config import Config

    env = os.environ if env is None else env
    kwargs: dict[str, Any] = {
        "config": Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2,
                         read_timeout=5, max_pool_connections=max(10, connections)),
    }
    region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION")
    if region:
        kwargs["region_name"] = region
    # a local endpoint: the service's own (boto3's AWS_ENDPOINT_URL_<SERVICE>), else the one for all
    endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    return boto3.session.Session().client(service, **kwargs)


def table_names(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(the messages table's name, its index's), as DDB_MESSAGE_TABLE and DDB_GSI_NAME give them,
    else as the layout names them."""
    # here rather than at the top: the sign-up Lambda imports this file, and has no table
    from lib.conversations.layout import GSI_NAME, TABLE_NAME

    env = os.environ if env is None else env
    return env.get("DDB_MESSAGE_TABLE") or TABLE_NAME, env.get("DDB_GSI_NAME") or GSI_NAME


def messages_table(env: Mapping[str, str] | None = None, connections: int = 10) -> tuple[Any, str]:
    """(the messages table as lib.ddb.Ddb over `dynamodb_client(env, connections)`, its index's
    name): `table_names`."""
    from lib.ddb import Ddb

    table, index = table_names(env)
    return Ddb(table, dynamodb_client(env, connections)), index
