"""boto3 clients built from Settings: the endpoint override, region and retry policy in one place."""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

import boto3
import botocore
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
    # A fixed User-Agent: botocore otherwise rebuilds its from a dozen components twice per call,
    # a tenth of a millisecond of CPU each time.
    user_agent=f"cruddur-messages Botocore/{botocore.__version__}",
)


def local_credentials(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Credentials for a local endpoint (moto accepts any), as environment variables, so that a
    laptop without an AWS profile works; none when the environment has credentials of its own."""
    env = os.environ if env is None else env
    if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE"):
        return {}
    return {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


# Settings decide where a service is. Without this, botocore would also read AWS_ENDPOINT_URL and
# AWS_ENDPOINT_URL_<SERVICE> from the environment by itself, and a script run with --prod in a
# shell that points at the local stack would act on the local stack.
AWS_CONFIG = RETRY_CONFIG.merge(Config(ignore_configured_endpoint_urls=True))


# For the API's own calls, whose parameters this code alone builds: botocore's client-side check
# of every parameter against the model costs about as much CPU as the rest of the call's
# preparation, and DynamoDB checks them again anyway (a ValidationException, then StoreError).
UNCHECKED = Config(parameter_validation=False)
# DynamoDB reads whose answer the lean client takes as the wire's JSON (see `take_reads_as_json`).
JSON_READS = ("Query", "GetItem")


def take_reads_as_json(made: Any) -> None:
    """Answer DynamoDB's reads with their JSON as it came, skipping botocore's walk of the response
    model. For DynamoDB's JSON protocol that walk changes nothing but binary values (base64 text
    becomes bytes) and timestamps, and this table holds neither in what is read; it is the larger
    part of a Query's client-side CPU (several calls per attribute of every item). Done through
    botocore's own `before-parse` event: the body goes to the parsed answer as it is, and the
    parser is left an empty object (errors are parsed as usual)."""
    def as_json(response_dict: dict[str, Any], customized_response_dict: dict[str, Any],
                **_: Any) -> None:
        if response_dict.get("status_code", 500) < 300 and response_dict.get("body"):
            customized_response_dict.update(json.loads(response_dict["body"]))
            response_dict["body"] = b"{}"

    for operation in JSON_READS:
        made.meta.events.register(f"before-parse.dynamodb.{operation}", as_json)


# For a call a request must not wait long on (the readiness probe, the recheck of a token): one
# attempt that gives up within seconds, instead of three that could take fifteen.
QUICK = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1,
               read_timeout=2)


S3_SIGNATURE = Config(signature_version="s3v4")


def client(settings: Settings, service: str, lean: bool = False, quick: bool = False) -> Any:
    """A boto3 client for `service`: moto's endpoint locally, AWS when no override is set.
    `lean` (the API's DynamoDB client): no client-side parameter validation (UNCHECKED), reads
    taken as JSON (`take_reads_as_json`). `quick`: one quick attempt (QUICK)."""
    endpoint = settings.endpoint_for(service)
    config = RETRY_CONFIG if endpoint else AWS_CONFIG
    if lean:
        config = config.merge(UNCHECKED)
    if quick:
        config = config.merge(QUICK)
    if service == "s3":  # presigned URLs signed with SigV4 everywhere (older botocore chose by region)
        config = config.merge(S3_SIGNATURE)
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": config}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
        for name, value in local_credentials().items():
            kwargs[name.lower()] = value  # aws_access_key_id, aws_secret_access_key
    made = boto3.session.Session().client(service, **kwargs)
    if lean and service == "dynamodb":
        take_reads_as_json(made)
    # Counted for the benchmark: calls the code makes, and requests sent (retries included).
    made.meta.events.register("before-send", lambda **_: metrics.count(f"{service}_requests"))
    made.meta.events.register("before-call", lambda **_: metrics.count(f"{service}_calls"))
    return made
