"""Harsher than AWS: the local moto server made to show DynamoDB's weaker guarantees on demand.

moto is immediate, lossless and serialised; DynamoDB is not. With the switch on, the local server:

  gsi_lag_ms         a Query on a global secondary index does not see writes younger than this:
                     it sees each item as it was before them (DynamoDB's GSIs are eventually
                     consistent; the lag is usually under a second)
  lost_responses     a successful write's response is replaced, with this probability, by a 500
                     InternalServerError: the write happened, the client does not know, and the
                     SDK retries it (DynamoDB documents that a 500 may mean "applied")
  throttle           a data-plane request is refused, with this probability, with
                     ProvisionedThroughputExceededException before it is applied (the SDK backs off
                     and retries)
  duplicate_records  each stream record that GetRecords returns is, with this probability,
                     returned twice (stream records are delivered at least once)

`GET /_harsh/counts` says how often each happened since the server started.

The switch is the environment, read when the server starts (LOCAL_HARSH=1 turns every knob on at
its default; LOCAL_HARSH_GSI_LAG_MS, LOCAL_HARSH_LOST_RESPONSES, LOCAL_HARSH_THROTTLE and
LOCAL_HARSH_DUPLICATE_RECORDS set one each; LOCAL_HARSH_SEED makes the dice repeatable), and
`GET`/`POST /_harsh` (JSON of the knobs) reads or changes it while the server runs: the tests turn
it on for the flows they exercise.
"""
from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable, Iterable, Mapping

from lib.config import ConfigError

CONTROL_PATH = "/_harsh"
# What LOCAL_HARSH=1 means.
DEFAULTS = {"gsi_lag_ms": 500.0, "lost_responses": 0.1, "throttle": 0.05, "duplicate_records": 0.2}
ENV = {"gsi_lag_ms": "LOCAL_HARSH_GSI_LAG_MS", "lost_responses": "LOCAL_HARSH_LOST_RESPONSES",
       "throttle": "LOCAL_HARSH_THROTTLE", "duplicate_records": "LOCAL_HARSH_DUPLICATE_RECORDS"}
WRITES = {"PutItem", "DeleteItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem"}
DATA_PLANE = WRITES | {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
DYNAMODB_TARGET = "DynamoDB_20120810."
STREAMS_GET_RECORDS = "DynamoDBStreams_20120810.GetRecords"


@dataclass(frozen=True)
class Harshness:
    gsi_lag_ms: float = 0.0
    lost_responses: float = 0.0
    throttle: float = 0.0
    duplicate_records: float = 0.0

    @property
    def on(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def changed(self, values: Mapping[str, Any]) -> "Harshness":
        """These knobs changed (unknown names and values out of range are a ValueError)."""
        changes: dict[str, float] = {}
        for name, value in values.items():
            if name not in DEFAULTS:
                raise ValueError(f"unknown knob {name!r}")
            number = float(value)
            high = float("inf") if name == "gsi_lag_ms" else 1.0
            if not 0 <= number <= high or number == float("inf"):  # nan and inf too
                raise ValueError(f"{name} out of range: {value!r}")
            changes[name] = number
        return replace(self, **changes)


SWITCH_ON, SWITCH_OFF = ("1", "true", "on"), ("", "0", "false", "off")


def from_env(env: Mapping[str, str] | None = None) -> Harshness:
    """LOCAL_HARSH and the LOCAL_HARSH_* knobs; a value that cannot be used is a ConfigError
    naming its variable."""
    env = os.environ if env is None else env
    switch = env.get("LOCAL_HARSH", "")
    if switch not in SWITCH_ON + SWITCH_OFF:
        raise ConfigError(f"LOCAL_HARSH must be 1, true or on (or 0, false or off), not {switch!r}")
    harshness = Harshness(**DEFAULTS) if switch in SWITCH_ON else Harshness()
    for name, var in ENV.items():
        if env.get(var):
            try:
                harshness = harshness.changed({name: env[var]})
            except ValueError:
                what = "milliseconds, at least 0" if name == "gsi_lag_ms" else "a probability from 0 to 1"
                raise ConfigError(f"{var} must be {what}, not {env[var]!r}") from None
    return harshness


def describe(harshness: Harshness) -> str:
    """The knobs that are on, in a few words."""
    return ", ".join(f"{name} {value:g}" for name, value in asdict(harshness).items() if value)


def environment(harshness: Harshness) -> dict[str, str]:
    """The variables that give `harshness` to a server started with them."""
    return {ENV[name]: str(value) for name, value in asdict(harshness).items()}


class Dice:
    def __init__(self, seed: str | None = None):
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def roll(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self._random.random() < probability


class ChangeLog:
    """Recent changes of a table's items (the image before each), for a lagging index's view."""

    def __init__(self) -> None:
        self._changes: deque[tuple[float, tuple[Any, Any], Any]] = deque()

    def record(self, key: tuple[Any, Any], before: Any, now: float, keep_seconds: float) -> None:
        self._changes.append((now, key, before))
        while self._changes and self._changes[0][0] < now - max(keep_seconds, 1.0) - 60:
            self._changes.popleft()

    def as_of(self, since: float) -> dict[tuple[Any, Any], Any]:
        """{key: the item as it was before its first change at or after `since` (None: absent)}."""
        before: dict[tuple[Any, Any], Any] = {}
        for at, key, image in self._changes:
            if at >= since and key not in before:
                before[key] = image
        return before


class State:
    """The knobs in force, the dice, and what they did (for GET /_harsh/counts), shared by the
    middleware and the moto patches."""

    def __init__(self, harshness: Harshness, seed: str | None = None):
        self.harshness = harshness
        self.dice = Dice(seed)
        self.lock = threading.Lock()
        self.counts = {"throttled": 0, "responses_lost": 0, "records_duplicated": 0}

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def set(self, values: Mapping[str, Any]) -> Harshness:
        with self.lock:
            self.harshness = self.harshness.changed(values)
            return self.harshness


def _json_response(start_response: Callable, status: str, body: dict[str, Any],
                   content_type: str = "application/json") -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]


def _aws_error(start_response: Callable, status: str, error_type: str, message: str) -> list[bytes]:
    return _json_response(start_response, status,
                          {"__type": f"com.amazonaws.dynamodb.v20120810#{error_type}", "message": message},
                          "application/x-amz-json-1.0")


class HarshMiddleware:
    """WSGI middleware in front of moto's server: throttles, loses responses, duplicates stream
    records, and answers /_harsh."""

    def __init__(self, app: Callable, state: State):
        self.app = app
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CONTROL_PATH:
            return self._control(environ, start_response)
        if environ.get("PATH_INFO") == CONTROL_PATH + "/counts":
            return _json_response(start_response, "200 OK", dict(self.state.counts))
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        harsh = self.state.harshness
        operation = target[len(DYNAMODB_TARGET):] if target.startswith(DYNAMODB_TARGET) else None
        if operation in DATA_PLANE and self.state.dice.roll(harsh.throttle):
            self.state.count("throttled")
            return _aws_error(start_response, "400 Bad Request", "ProvisionedThroughputExceededException",
                              "harsh local stack: throughput exceeded (LOCAL_HARSH_THROTTLE)")
        if not ((operation in WRITES and harsh.lost_responses)
                or (target == STREAMS_GET_RECORDS and harsh.duplicate_records)):
            return self.app(environ, start_response)

        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured.update(status=status, headers=headers)
            return lambda data: None

        body = b"".join(self.app(environ, capture))
        status, headers = captured["status"], captured["headers"]
        if status.startswith("200") and operation in WRITES and self.state.dice.roll(harsh.lost_responses):
            # applied, but the client is told otherwise: it will retry
            self.state.count("responses_lost")
            return _aws_error(start_response, "500 Internal Server Error", "InternalServerError",
                              "harsh local stack: response lost (LOCAL_HARSH_LOST_RESPONSES)")
        if status.startswith("200") and target == STREAMS_GET_RECORDS:
            body = self._duplicated(body, harsh.duplicate_records)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def _duplicated(self, body: bytes, probability: float) -> bytes:
        response = json.loads(body)
        records = []
        for record in response.get("Records", []):
            records.append(record)
            if self.state.dice.roll(probability):
                records.append(record)  # delivered again, same sequence number
                self.state.count("records_duplicated")
        response["Records"] = records
        return json.dumps(response).encode()

    def _control(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                values = json.loads(environ["wsgi.input"].read(length) or b"{}")
                if not isinstance(values, dict):
                    raise ValueError("a JSON object of knobs")
                self.state.set(values)
            except ValueError as error:
                return _json_response(start_response, "400 Bad Request", {"error": str(error)})
        return _json_response(start_response, "200 OK", asdict(self.state.harshness))


def lagging_view(log: ChangeLog | None, current: Iterable[Any], key_of: Callable[[Any], tuple],
                 lag_seconds: float, now: float | None = None) -> list[Any]:
    """The items as an index lagging `lag_seconds` behind shows them: each key changed since then
    as it was before those changes."""
    if log is None or lag_seconds <= 0:
        return list(current)
    before = log.as_of((time.monotonic() if now is None else now) - lag_seconds)
    view = {key_of(item): item for item in current}
    for key, image in before.items():
        if image is None:
            view.pop(key, None)
        else:
            view[key] = image
    return list(view.values())


def set_remote(endpoint: str, **knobs: float) -> Harshness:
    """Change the harshness of the running local server at `endpoint` (knobs not named stay)."""
    import urllib.request

    request = urllib.request.Request(f"{endpoint.rstrip('/')}{CONTROL_PATH}", method="POST",
                                     data=json.dumps(knobs).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return Harshness(**json.load(response))
