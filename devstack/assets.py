"""The assets bucket, locally: made in moto as aws/template.yaml makes it in AWS (private,
encrypted, uploads expiring, CORS for the frontend's PUT, every upload notified to a queue), the
avatar Lambda fed from that queue as its event source mapping feeds it in AWS, and a stand-in
for CloudFront that serves `avatars/` (and nothing else) over HTTP."""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from domain import avatars
from lib import aws
from lib.config import Settings
from devstack import lambdas, stream_mapping

log = logging.getLogger("assets")

BUCKET = "cruddur-assets"
QUEUE = "cruddur-avatar-uploads"
DEAD_LETTERS = "cruddur-avatar-uploads-failed"
# The template's mapping of the avatar queue to the avatar Lambda, and its queue.
MAPPING = "AvatarMapping"
QUEUE_RESOURCE = "AvatarQueue"
# The port the stand-in for CloudFront listens on, as the stack tells the worker that serves it,
# and the address (loopback, unless a container publishes it: docker-compose.yml).
CDN_PORT_ENV = "LOCAL_ASSETS_PORT"
CDN_HOST_ENV = "LOCAL_ASSETS_HOST"

Handler = Callable[[dict[str, Any], Any], Any]


def set_up(settings: Settings) -> tuple[str, str]:
    """The bucket and its queues, made or completed (each step may run again): (bucket, queue URL)."""
    s3, sqs = aws.client(settings, "s3"), aws.client(settings, "sqs")
    queue_settings = stream_mapping.resource(QUEUE_RESOURCE)  # the template's queue, as AWS makes it
    dead = sqs.create_queue(QueueName=DEAD_LETTERS)["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dead_arn,
               "maxReceiveCount": int(queue_settings["RedrivePolicy"]["maxReceiveCount"])}
    queue = sqs.create_queue(QueueName=QUEUE, Attributes={
        "VisibilityTimeout": str(queue_settings["VisibilityTimeout"]), "RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bucket = settings.assets_bucket or BUCKET
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        # only when missing: moto's CreateBucket of a bucket it has in us-east-1 empties it
        s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [settings.frontend_url], "AllowedMethods": ["PUT"], "AllowedHeaders": ["content-type"],
        "MaxAgeSeconds": 3000}]})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
        "ID": "uploads-expire", "Status": "Enabled", "Filter": {"Prefix": avatars.UPLOADS_PREFIX},
        "Expiration": {"Days": avatars.UPLOAD_DAYS}}]})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [{
        "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": avatars.UPLOADS_PREFIX}]}}}]})
    return bucket, queue


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """A batch of received messages as Lambda's SQS event source mapping hands them over."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region} for m in messages]}


@dataclass
class QueueWorker:
    """The avatar queue's event source mapping: receive a batch, hand it to the handler, delete
    what it did not report failed (a message it failed, or every one when it raised, comes back
    after the queue's visibility timeout, and goes to the dead-letter queue after its receives)."""
    settings: Settings
    queue_url: str
    handler: Handler
    batch_size: int = 10

    def __post_init__(self) -> None:
        self.sqs = aws.client(self.settings, "sqs")
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def poll_once(self, wait_seconds: int = 0) -> int:
        """One batch; how many messages it held."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, self.batch_size),
                                            WaitTimeSeconds=wait_seconds, AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return 0
        try:
            result = self.handler(sqs_event(messages, self.queue_arn, self.settings.aws_region),
                                  lambdas.context("cruddur-avatar-processing", 30_000))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception:
            log.exception("the avatar Lambda raised: its %d messages come back after the visibility timeout",
                          len(messages))
            return len(messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        return len(messages)

    def run(self, stop: threading.Event, interval: float = 0.3) -> None:
        while not stop.is_set():
            try:
                if not self.poll_once():
                    stop.wait(interval)
            except (BotoCoreError, ClientError) as error:
                log.warning("avatar queue: %s", error)
                stop.wait(2)


class Cdn:
    """CloudFront, locally: GET or HEAD /avatars/<file> serves that object of the bucket (which is
    private: only this reads it, as only the distribution reads it in AWS, through origin access
    control). Anything else, or an avatar that does not exist, is 403, as S3 answers CloudFront
    for a key its bucket policy does not grant."""

    def __init__(self, settings: Settings, bucket: str):
        self.s3 = aws.client(settings, "s3")
        self.bucket = bucket

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
        key = path.lstrip("/")
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"GET or HEAD only\n")
        if not key.startswith(avatars.AVATARS_PREFIX) or "/" in key[len(avatars.AVATARS_PREFIX):]:
            return _plain(start_response, "403 Forbidden", b"AccessDenied\n")
        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return _plain(start_response, "403 Forbidden", b"AccessDenied\n")
        body = got["Body"].read()
        start_response("200 OK", [("Content-Type", got.get("ContentType", "application/octet-stream")),
                                  ("Content-Length", str(len(body))), ("ETag", got["ETag"]),
                                  ("Cache-Control", got.get("CacheControl", "max-age=60"))])
        return [] if method == "HEAD" else [body]


def _plain(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def serve_cdn(settings: Settings, bucket: str, port: int, stop: threading.Event,
              host: str = "127.0.0.1") -> threading.Thread:
    """The stand-in for CloudFront on `host`:`port`, in a thread, until `stop` is set."""
    from werkzeug.serving import make_server

    server = make_server(host, port, Cdn(settings, bucket), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="assets-cdn", daemon=True)
    thread.start()
    threading.Thread(target=lambda: (stop.wait(), server.shutdown()), daemon=True).start()
    return thread
