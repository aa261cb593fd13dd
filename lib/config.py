"""The app's configuration, read from the environment in this one place.

Every other module takes a `Settings` rather than reading `os.environ` itself, so that tests and
scripts can build one explicitly and nothing depends on import-time environment. The local
stack's own settings (ports, data folder, the local pool's names) are in devstack/settings.py.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from lib.conversations.layout import TABLE_NAME

ROOT = Path(__file__).resolve().parent.parent
# The Lambdas' handlers, each named as deployed (with hyphens).
LAMBDAS = ROOT / "aws" / "lambdas"

# The frontends a deployment can serve (CRUDDUR_FRONTEND).
FRONTENDS = ("week-5", "final")

# Per-service endpoint overrides, named as boto3 itself names them.
SERVICE_ENDPOINT_VARS = {
    "dynamodb": "AWS_ENDPOINT_URL_DYNAMODB",
    "dynamodbstreams": "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    "cognito-idp": "AWS_ENDPOINT_URL_COGNITO_IDP",
    # S3 as a browser reaches it: the API only signs URLs for S3 (avatar uploads), never calls it
    "s3": "AWS_ENDPOINT_URL_S3",
}


@dataclass(frozen=True)
class Settings:
    connection_url: str = "postgresql://postgres@127.0.0.1:5433/cruddur"
    # None means real AWS; a URL sends DynamoDB, Streams and Cognito to that endpoint (moto locally).
    aws_endpoint_url: str | None = None
    # One service elsewhere than the rest, with boto's own variable names (SERVICE_ENDPOINT_VARS):
    # e.g. DynamoDB Local for DynamoDB and its stream while Cognito stays on AWS.
    service_endpoints: tuple[tuple[str, str], ...] = ()
    aws_region: str = "us-east-1"
    ddb_table: str = TABLE_NAME
    cognito_user_pool_id: str | None = None
    cognito_client_id: str | None = None
    frontend_url: str = "http://localhost:3000"
    # Which of the bootcamp's frontends this deployment serves where the two read one URL
    # differently (GET /api/activities/@<handle>: a bare array for week-5, {profile, activities}
    # for the final one): FRONTENDS.
    frontend: str = "week-5"
    port: int = 4567
    # The assets bucket (the stack's AssetsBucketName output), where avatars are uploaded and kept;
    # without it POST /avatars/key_upload answers 503 avatars_unavailable.
    assets_bucket: str | None = None
    # Pool sizing and timeouts: bounded so that a PostgreSQL outage answers fast instead of hanging.
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_timeout_seconds: float = 3.0
    # How long a Cognito `sub` -> user lookup is cached (users rarely change).
    user_cache_seconds: float = 60.0
    # how often an idle live-event stream sends a comment (the contract: at least every 25 s)
    events_ping_seconds: float = 15.0
    # the longest a live-event stream stays open before the server ends it (the page reconnects,
    # missing nothing): under a proxy's request timeout (App Runner's is 120 s), and spreads pages
    # over new instances
    events_stream_seconds: float = 3600.0
    # What one account, and one process, may hold of live events (docs/security.md): open streams
    # per user in one process (the next gets 429 too_many_streams), open streams per process (the
    # next gets 503 busy; the process serves everything else), tickets not yet used per user (the
    # next gets 429 too_many_tickets).
    events_streams_per_user: int = 5
    events_streams_per_process: int = 1000
    events_tickets_per_user: int = 5
    # A stream whose page has not taken an event within this many seconds (a reader that stopped
    # reading) is ended rather than buffered; the page resumes from its last id.
    events_send_seconds: float = 10.0
    # How long a verified access token is trusted before the user pool is asked again whether its
    # user may still act (GetUser: disabled, deleted or signed out everywhere is refused). The
    # bound on how long a revoked user keeps access; 0 never asks (a token then works until it
    # expires).
    token_recheck_seconds: float = 300.0
    # Signs pagination cursors; every process serving the API must share it.
    cursor_secret: str | None = None
    # Serve GET /api/_metrics (call counters, for the benchmark). Off unless METRICS_ENABLED=1.
    metrics_enabled: bool = False
    # The API's client-facing URL (e.g. https://api.cruddur.example): the base of the Link header's
    # next page. Unset, the Link is a relative reference, unless proxy hops are trusted.
    public_url: str | None = None
    # Create the Cruddur user of a signed-in, verified pool user the API has never seen, with the
    # post-confirmation trigger's own code (where no trigger runs: moto's Cognito). None: on when
    # Cognito has an endpoint override.
    provision_users: bool | None = None
    # Where OpenTelemetry traces go (OTLP over HTTP); None: no tracing at all.
    otlp_endpoint: str | None = None
    # How many proxies in front of the API to believe in X-Forwarded-For/-Proto/-Host/-Port.
    # 0 (the default): none, so a client cannot make the API think it is elsewhere.
    trusted_proxy_hops: int = 0

    @property
    def is_local(self) -> bool:
        return self.aws_endpoint_url is not None

    @property
    def provisions_users(self) -> bool:
        if self.provision_users is not None:
            return self.provision_users
        return self.endpoint_for("cognito-idp") is not None

    def missing_for_aws(self) -> list[str]:
        """In AWS (no endpoint override at all), the variables the API cannot serve without."""
        if self.aws_endpoint_url or self.service_endpoints:
            return []
        wanted = [("CURSOR_SECRET", self.cursor_secret),
                  ("AWS_COGNITO_USER_POOL_ID", self.cognito_user_pool_id),
                  ("AWS_COGNITO_USER_POOL_CLIENT_ID", self.cognito_client_id)]
        return [name for name, value in wanted if not value]

    def endpoint_for(self, service: str) -> str | None:
        """Where `service` (a boto3 service name) is reached: None means AWS."""
        return dict(self.service_endpoints).get(service) or self.aws_endpoint_url

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes)  # type: ignore[arg-type]


class ConfigError(ValueError):
    """A variable of the environment that cannot be used; its message is the one line to show."""


def env_int(env: Mapping[str, str], name: str, default: int, low: int | None = None,
            high: int | None = None) -> int:
    """`name` as a whole number from `low` to `high` (either bound optional), else ConfigError."""
    return _env_number(env, name, default, int, "a whole number", low, high)


def env_float(env: Mapping[str, str], name: str, default: float, low: float | None = None) -> float:
    """`name` as a number of at least `low`, else ConfigError."""
    return _env_number(env, name, default, float, "a number", low, None)


def _env_number(env: Mapping[str, str], name: str, default: Any, kind: Callable[[str], Any],
                what: str, low: Any, high: Any) -> Any:
    value = env.get(name)
    if not value:
        return default
    bounds = (f" from {low} to {high}" if low is not None and high is not None
              else f" of at least {low}" if low is not None else "")
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"{name} must be {what}{bounds}, not {value!r}") from None
    if (number != number or number in (float("inf"), float("-inf"))  # nan, inf
            or (low is not None and number < low) or (high is not None and number > high)):
        raise ConfigError(f"{name} must be {what}{bounds}, not {value!r}")
    return number


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name)
    if not value:
        return default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment (or from a given mapping)."""
    env = os.environ if env is None else env
    d = Settings()
    settings = Settings(
        connection_url=env.get("CONNECTION_URL") or d.connection_url,
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        service_endpoints=tuple((service, env[name]) for service, name in SERVICE_ENDPOINT_VARS.items()
                                if env.get(name)),
        aws_region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or d.aws_region,
        ddb_table=env.get("DDB_MESSAGE_TABLE") or d.ddb_table,
        cognito_user_pool_id=env.get("AWS_COGNITO_USER_POOL_ID") or None,
        cognito_client_id=env.get("AWS_COGNITO_USER_POOL_CLIENT_ID") or None,
        frontend_url=env.get("FRONTEND_URL") or d.frontend_url,
        frontend=env_choice(env, "CRUDDUR_FRONTEND", d.frontend, FRONTENDS),
        port=env_int(env, "PORT", d.port, 1, 65535),
        assets_bucket=env.get("ASSETS_BUCKET") or None,
        db_pool_min=env_int(env, "DB_POOL_MIN", d.db_pool_min, 0),
        db_pool_max=env_int(env, "DB_POOL_MAX", d.db_pool_max, 1),
        db_timeout_seconds=env_float(env, "DB_TIMEOUT_SECONDS", d.db_timeout_seconds, 0.1),
        user_cache_seconds=env_float(env, "USER_CACHE_SECONDS", d.user_cache_seconds, 0),
        events_ping_seconds=min(25.0, env_float(env, "EVENTS_PING_SECONDS", d.events_ping_seconds, 0.1)),
        events_stream_seconds=env_float(env, "EVENTS_STREAM_SECONDS", d.events_stream_seconds, 1),
        events_streams_per_user=env_int(env, "EVENTS_STREAMS_PER_USER", d.events_streams_per_user, 1),
        events_streams_per_process=env_int(env, "EVENTS_STREAMS_PER_PROCESS", d.events_streams_per_process, 1),
        events_tickets_per_user=env_int(env, "EVENTS_TICKETS_PER_USER", d.events_tickets_per_user, 1),
        events_send_seconds=env_float(env, "EVENTS_SEND_SECONDS", d.events_send_seconds, 0.1),
        token_recheck_seconds=env_float(env, "TOKEN_RECHECK_SECONDS", d.token_recheck_seconds, 0),
        cursor_secret=env.get("CURSOR_SECRET") or None,
        metrics_enabled=env.get("METRICS_ENABLED") == "1",
        public_url=(env.get("PUBLIC_URL") or "").rstrip("/") or None,
        trusted_proxy_hops=env_int(env, "TRUSTED_PROXY_HOPS", d.trusted_proxy_hops, 0),
        provision_users={"1": True, "0": False}.get(env.get("PROVISION_USERS", "")),
        otlp_endpoint=(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                       or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None),
    )
    if settings.db_pool_min > settings.db_pool_max:
        raise ConfigError(f"DB_POOL_MIN ({settings.db_pool_min}) must not exceed DB_POOL_MAX "
                          f"({settings.db_pool_max})")
    return settings
