"""boto3 clients built from Settings: the endpoint override, region and retry policy in one place."""
from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

from lib import metrics
from lib.config import Settings

# Throttling and transient 5xx are retried by botocore itself, with backoff, before any error
# reaches the app (standard mode covers ProvisionedThroughputExceeded and ThrottlingException).
RETRY_CONFIG = Config(
    # Three attempts: backoff stays within a few seconds, so a throttled request answers 503 soon.
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=32,
)


def client(settings: Settings, service: str) -> Any:
    """A boto3 client for `service`: moto's endpoint locally, AWS when no override is set."""
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": RETRY_CONFIG}
    endpoint = settings.endpoint_for(service)
    if endpoint:
        kwargs["endpoint_url"] = endpoint
        # moto accepts any credentials; supply some so a laptop without an AWS profile works.
        if not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
            kwargs["aws_access_key_id"] = "test"
            kwargs["aws_secret_access_key"] = "test"
    made = boto3.session.Session().client(service, **kwargs)
    # Counted for the benchmark: calls the code makes, and requests sent (retries included).
    made.meta.events.register("before-send", lambda **_: metrics.count(f"{service}_requests"))
    made.meta.events.register("before-call", lambda **_: metrics.count(f"{service}_calls"))
    return made
