"""The stream's two Lambdas, driven by the local table's stream (bin/ddb/stream-worker, and ./bin/dev).

In AWS, two event source mappings read the messages table's stream: one invokes
aws/lambdas/cruddur-messaging-stream.py (the row mover), the other
aws/lambdas/cruddur-messaging-events.py (live events). Locally (moto, or DynamoDB Local) nothing
does, so this worker plays both mappings, each in its own thread with its own position, batch
size and filter (read from the template): it polls every shard of the table's latest stream, turns
each GetRecords batch into a Lambda-shaped event, calls the Lambda's own `lambda_handler`, and
honours its `batchItemFailures` the way Lambda does (retry from the reported record).

Its position is kept in a checkpoint file, {stream ARN: {shard id: last fully processed sequence
number, or "SHARD_END"}}, replaced atomically after every batch, so a restart resumes right after
the last record it finished: nothing skipped, nothing reapplied. With no checkpoint it starts at
TRIM_HORIZON (the stream's oldest record); the Lambda is idempotent, so reading the seed
conversation's records again on a fresh table changes nothing.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

from devstack import assets, lambdas
from lib import aws, config
from lib.config import ROOT, Settings
from devstack import stream_mapping
from devstack.files import write_atomically

log = logging.getLogger("stream-worker")

LAMBDA_PATH = lambdas.LAMBDAS / "cruddur-messaging-stream.py"
EVENTS_LAMBDA_PATH = lambdas.LAMBDAS / "cruddur-messaging-events.py"
AVATAR_LAMBDA_PATH = lambdas.LAMBDAS / "cruddur-avatar-processing.py"
LAMBDA_NAME = "cruddur-messaging-stream"
DEFAULT_CHECKPOINT = ROOT / ".local" / "stream-worker.json"
# How often an idle events mapping asks the stream again: a live event waits at most this long
# here (the deployed mapping has no batching window; Lambda polls each shard about 4 times a second).
EVENTS_INTERVAL = 0.15
SHARD_END = "SHARD_END"
# The deployed mapping's batch size: a backlog is replayed in batches as large as in AWS, and each
# group is moved once per batch however many of its messages the batch holds.
DEFAULT_BATCH_SIZE = stream_mapping.batch_size()
# How often the stream's shards (and the table's latest stream) are listed again.
REFRESH_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 10.0

Handler = Callable[[dict[str, Any], Any], Any]


def load_lambda(path: Path = LAMBDA_PATH) -> ModuleType:
    """The Lambda's module; each call gives a new module, with its own cached client."""
    return lambdas.load(path)


def lambda_environment(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the Lambda reads, for the same table and endpoint as `settings`."""
    env = os.environ if env is None else env
    values = {"DDB_MESSAGE_TABLE": settings.ddb_table, "AWS_DEFAULT_REGION": settings.aws_region,
              "CONNECTION_URL": settings.connection_url}  # the events Lambda's
    if settings.assets_bucket:
        values["ASSETS_BUCKET"] = settings.assets_bucket  # the avatar Lambda's
    endpoint = settings.endpoint_for("dynamodb")  # the Lambdas talk to DynamoDB, not to Cognito
    if endpoint:
        values["AWS_ENDPOINT_URL"] = endpoint
        values.update(aws.local_credentials(env))
    s3 = settings.endpoint_for("s3")  # the avatar Lambda's, when elsewhere (docker-compose.yml)
    if s3 and s3 != endpoint:
        values["AWS_ENDPOINT_URL_S3"] = s3
    return values


class Checkpoints:
    """{stream ARN: {shard id: sequence number}} in a JSON file, rewritten atomically."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data: dict[str, dict[str, str]] = {}
        if self.path.exists():
            self.data = json.loads(self.path.read_text() or "{}")

    def get(self, stream_arn: str, shard_id: str) -> str | None:
        return self.data.get(stream_arn, {}).get(shard_id)

    def put(self, stream_arn: str, shard_id: str, value: str) -> None:
        self.data.setdefault(stream_arn, {})[shard_id] = value
        self.save()

    def drop(self, stream_arn: str, shard_id: str) -> None:
        if self.data.get(stream_arn, {}).pop(shard_id, None) is not None:
            self.save()

    def forget_older_streams(self, stream_arn: str) -> None:
        """Drop the positions in the same table's earlier streams (the table was recreated)."""
        table_arn = stream_arn.split("/stream/")[0]
        stale = [a for a in self.data if a != stream_arn and a.split("/stream/")[0] == table_arn]
        for arn in stale:
            del self.data[arn]
        if stale:
            self.save()

    def save(self) -> None:
        write_atomically(self.path, json.dumps(self.data, indent=1, sort_keys=True).encode())


@dataclass
class _Shard:
    id: str
    parent: str | None
    iterator: str | None = None
    # after a reported failure: read again from this record (AT_SEQUENCE_NUMBER)
    retry_at: str | None = None
    failures: int = 0
    not_before: float = 0.0


def lambda_event(records: list[dict[str, Any]], stream_arn: str, region: str) -> dict[str, Any]:
    """GetRecords records as Lambda hands them to a function (JSON-safe)."""
    shaped = []
    for record in records:
        data = dict(record["dynamodb"])
        created = data.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            data["ApproximateCreationDateTime"] = created.timestamp()
        shaped.append({
            "eventID": record.get("eventID"),
            "eventName": record.get("eventName"),
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion") or region,
            "dynamodb": data,
            "eventSourceARN": stream_arn,
        })
    return {"Records": shaped}


def failed_position(records: list[dict[str, Any]], result: Any) -> int | None:
    """Where to resume after the handler's answer: None when the batch succeeded, else the
    position of the first record to read again. As Lambda does, an identifier that is not in
    the batch fails the whole batch, and of several, the lowest sequence number counts."""
    failures = (result or {}).get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return None
    positions = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(records)}
    found = [positions.get((f or {}).get("itemIdentifier")) for f in failures]
    return 0 if None in found else min(found)  # type: ignore[type-var]


class StreamWorker:
    """Polls the stream of `settings.ddb_table` and hands each batch to `handler`."""

    def __init__(self, settings: Settings, handler: Handler, checkpoint_path: Path = DEFAULT_CHECKPOINT,
                 batch_size: int = DEFAULT_BATCH_SIZE, refresh_seconds: float = REFRESH_SECONDS,
                 mapping: str = stream_mapping.MOVER):
        self.settings = settings
        self.handler = handler
        self.checkpoints = Checkpoints(checkpoint_path)
        self.batch_size = batch_size
        self.refresh_seconds = refresh_seconds
        self.patterns = stream_mapping.stream_patterns(mapping=mapping)
        self.dynamodb = aws.client(settings, "dynamodb")
        self.streams = aws.client(settings, "dynamodbstreams")
        self.stream_arn: str | None = None
        self.shards: dict[str, _Shard] = {}
        self.records_read = 0  # every record GetRecords returned, the filtered-out ones too
        self._next_refresh = 0.0
        self._waiting_logged = False
        self._no_stream_logged = False

    # -- one round -----------------------------------------------------------------------------
    def poll_once(self) -> int:
        """Read each readable shard once; returns how many records were read (the handler is given
        those the mapping's filter lets through). Without a stream, the table is asked again only
        every `refresh_seconds`."""
        now = time.monotonic()
        if now >= self._next_refresh:
            self.refresh()
        if self.stream_arn is None:
            return 0
        delivered = 0
        for shard in list(self.shards.values()):
            if self._finished(shard.id) or not self._parent_done(shard) or shard.not_before > now:
                continue
            delivered += self._poll_shard(shard)
        return delivered

    def drain(self, max_rounds: int = 1000) -> int:
        """Poll until a round delivers nothing (or no shard is ready); returns records delivered."""
        total = 0
        for _ in range(max_rounds):
            delivered = self.poll_once()
            total += delivered
            if not delivered:
                break
        return total

    def run(self, stop: threading.Event, interval: float = 0.3) -> None:
        """Poll until `stop` is set; idle rounds wait `interval`, errors back off."""
        errors = 0
        while not stop.is_set():
            try:
                delivered = self.poll_once()
                errors = 0
            except Exception as error:  # the endpoint may be restarting: keep going, quietly
                errors += 1
                delivered = 0
                log.warning("stream poll failed (%s: %s)", type(error).__name__,
                            str(error).splitlines()[0] if str(error) else "")
                self.stream_arn, self._next_refresh = None, 0.0  # find the stream again: the table may have been recreated
            if not delivered:
                stop.wait(min(interval * 2 ** errors, MAX_BACKOFF_SECONDS))

    # -- the stream and its shards -------------------------------------------------------------
    def refresh(self) -> None:
        """Find the table's latest stream and list its shards."""
        self._next_refresh = time.monotonic() + self.refresh_seconds
        arn = self._latest_stream_arn()
        if arn is None and not self._no_stream_logged:
            self._next_refresh = 0.0  # no table yet (it is being made): look again next round
        if arn is None:
            if not self._waiting_logged:
                log.info("waiting for table %s and its stream", self.settings.ddb_table)
                self._waiting_logged = True
            self.stream_arn, self.shards = None, {}
            return
        self._waiting_logged = False
        if arn != self.stream_arn:
            log.info("following stream %s", arn)
            self.stream_arn, self.shards = arn, {}
            self.checkpoints.forget_older_streams(arn)
        listed = self._list_shards(arn)
        for shard_id, parent in listed.items():
            if shard_id not in self.shards:
                self.shards[shard_id] = _Shard(shard_id, parent)
        for shard_id in [s for s in self.shards if s not in listed]:
            # trimmed away (older than 24 hours in AWS): nothing left to read
            del self.shards[shard_id]
            self.checkpoints.drop(arn, shard_id)

    def _latest_stream_arn(self) -> str | None:
        try:
            table = self.dynamodb.describe_table(TableName=self.settings.ddb_table)["Table"]
        except self.dynamodb.exceptions.ResourceNotFoundException:
            self._no_stream_logged = False
            return None
        enabled = (table.get("StreamSpecification") or {}).get("StreamEnabled")
        if not enabled and not self._no_stream_logged:
            # nothing will move the group rows: say so once, loudly, with what to do
            log.error("table %s has no stream: conversation lists will not change; turn it on "
                      "(bin/ddb/schema-load does, with new images)", self.settings.ddb_table)
            self._no_stream_logged = True
        elif enabled:
            self._no_stream_logged = False
        return table.get("LatestStreamArn") if enabled else None

    def _list_shards(self, arn: str) -> dict[str, str | None]:
        shards: dict[str, str | None] = {}
        kwargs: dict[str, Any] = {"StreamArn": arn}
        while True:
            description = self.streams.describe_stream(**kwargs)["StreamDescription"]
            for shard in description.get("Shards", []):
                shards[shard["ShardId"]] = shard.get("ParentShardId")
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            kwargs["ExclusiveStartShardId"] = last

    def _finished(self, shard_id: str) -> bool:
        return self.checkpoints.get(self.stream_arn or "", shard_id) == SHARD_END

    def _parent_done(self, shard: _Shard) -> bool:
        # A child shard holds later changes of the same keys as its parent: read it only once
        # the parent is read to its end (a parent no longer listed has been trimmed).
        return shard.parent is None or shard.parent not in self.shards or self._finished(shard.parent)

    def _iterator(self, shard: _Shard) -> str:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.id}
        done = self.checkpoints.get(self.stream_arn or "", shard.id)
        if shard.retry_at:
            kwargs.update(ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=shard.retry_at)
        elif done:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=done)
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        return self.streams.get_shard_iterator(**kwargs)["ShardIterator"]

    # -- one shard -----------------------------------------------------------------------------
    def _poll_shard(self, shard: _Shard) -> int:
        arn = self.stream_arn or ""
        errors = self.streams.exceptions
        try:
            if shard.iterator is None:
                shard.iterator = self._iterator(shard)
            response = self.streams.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
        except errors.ExpiredIteratorException:
            shard.iterator = None
            return 0
        except errors.TrimmedDataAccessException:
            log.warning("shard %s: checkpoint is older than the stream keeps; reading from its "
                        "oldest record", shard.id)
            shard.iterator, shard.retry_at = None, None
            self.checkpoints.drop(arn, shard.id)
            return 0
        records = response.get("Records", [])
        self.records_read += len(records)
        following = response.get("NextShardIterator")
        if not records:
            if following is None:
                self._close(shard)
            # Ask for a fresh iterator (from the checkpoint) on the next round rather than follow
            # this one: moto replaces a table's stream object whenever a transaction on the table
            # is cancelled, and an iterator made before then never sees a new record.
            shard.iterator = None
            return 0

        result: Any = None
        # As the event source mapping does: only the records its filter lets through reach the
        # function; a batch with none is done without an invocation.
        event = lambda_event(records, arn, self.settings.aws_region)
        event["Records"] = [r for r in event["Records"] if stream_mapping.delivered(self.patterns, r)]
        if event["Records"]:
            try:
                result = self.handler(event, lambdas.context(LAMBDA_NAME))
            except Exception:  # as Lambda does with a function error: the whole batch is retried
                log.exception("shard %s: the handler failed; the batch will be retried", shard.id)
                result = {"batchItemFailures": [
                    {"itemIdentifier": event["Records"][0]["dynamodb"]["SequenceNumber"]}]}
        position = failed_position(records, result)
        if position is None:
            self.checkpoints.put(arn, shard.id, records[-1]["dynamodb"]["SequenceNumber"])
            shard.retry_at, shard.failures, shard.iterator = None, 0, following
            if following is None:
                self._close(shard)
        else:
            if position > 0:
                self.checkpoints.put(arn, shard.id, records[position - 1]["dynamodb"]["SequenceNumber"])
            shard.retry_at = records[position]["dynamodb"]["SequenceNumber"]
            shard.iterator = None
            shard.failures += 1
            delay = min(0.2 * 2 ** (shard.failures - 1), MAX_BACKOFF_SECONDS)
            shard.not_before = time.monotonic() + delay
            log.warning("shard %s: record %s failed; retrying from it in %.1fs",
                        shard.id, shard.retry_at, delay)
        return len(records)

    def _close(self, shard: _Shard) -> None:
        log.info("shard %s read to its end", shard.id)
        self.checkpoints.put(self.stream_arn or "", shard.id, SHARD_END)


def events_checkpoint(checkpoint: Path) -> Path:
    """The events mapping's position, beside the row mover's (`stream-worker-events.json`)."""
    return checkpoint.with_name(f"{checkpoint.stem}-events{checkpoint.suffix}")


def events_worker(settings: Settings, checkpoint: Path) -> StreamWorker:
    """The events mapping: the events Lambda, with its own position, batch size and filter."""
    return StreamWorker(settings, load_lambda(EVENTS_LAMBDA_PATH).lambda_handler, events_checkpoint(checkpoint),
                        stream_mapping.batch_size(mapping=stream_mapping.EVENTS), mapping=stream_mapping.EVENTS)


def avatar_worker(settings: Settings) -> assets.QueueWorker:
    """The avatar queue's mapping: the avatar Lambda, fed the assets bucket's upload notices."""
    queue = aws.client(settings, "sqs").get_queue_url(QueueName=assets.QUEUE)["QueueUrl"]
    return assets.QueueWorker(settings, queue, load_lambda(AVATAR_LAMBDA_PATH).lambda_handler,
                              stream_mapping.batch_size(mapping=assets.MAPPING))


def serve(settings: Settings, checkpoint: Path = DEFAULT_CHECKPOINT, interval: float = 0.3,
          batch_size: int = DEFAULT_BATCH_SIZE) -> None:
    """Feed the table's stream to both Lambdas, and the avatar queue to the avatar Lambda (serving
the assets as CloudFront would on LOCAL_ASSETS_PORT, when set), until SIGTERM or SIGINT."""
    # The Lambdas configure themselves from the environment, as they do in AWS.
    os.environ.update(lambda_environment(settings))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("stream worker for table %s at %s (checkpoint %s)", settings.ddb_table,
             settings.endpoint_for("dynamodbstreams"), checkpoint)
    mappings: list[tuple[Any, float]] = [
        (StreamWorker(settings, load_lambda().lambda_handler, checkpoint, batch_size), interval),
        (events_worker(settings, checkpoint), min(interval, EVENTS_INTERVAL))]
    if settings.assets_bucket:
        mappings.append((avatar_worker(settings), interval))
        cdn_port = os.environ.get(assets.CDN_PORT_ENV)
        if cdn_port:
            assets.serve_cdn(settings, settings.assets_bucket, int(cdn_port), stop,
                             os.environ.get(assets.CDN_HOST_ENV) or "127.0.0.1")
    threads = [threading.Thread(target=worker.run, args=(stop, every), daemon=True) for worker, every in mappings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.info("stream worker stopped")


if __name__ == "__main__":
    # As ./bin/dev starts it: everything from the environment (STREAM_WORKER_CHECKPOINT optional).
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    serve(config.load(), Path(os.environ.get("STREAM_WORKER_CHECKPOINT") or DEFAULT_CHECKPOINT))
