"""cruddur-avatar-processing: makes each uploaded image its owner's avatar.

The assets bucket notifies an SQS queue of every object created under `uploads/avatars/`; the
queue's event source mapping invokes this function with batches of those notices. A thin
handler: the work is `lib.avatars.AvatarBucket.process` (which upload is whose, where the avatar
goes, the newest upload winning) with `lib.images.square_jpeg` (Pillow: a square JPEG, and what
is not an image refused). bin/aws/deploy packages that code and Pillow beside this file; the
local stack's worker loads this file and runs it as Lambda would.

Notices come at least once and in any order: processing one twice, or an old one late, writes
the newest upload again. An upload that cannot be an avatar (not an image, too many pixels, too
large) is logged and dropped, never retried; anything else fails its message alone
(FunctionResponseTypes=["ReportBatchItemFailures"]), which the queue gives back later and, after
its redrive policy's receives, moves to the dead-letter queue.

Environment: ASSETS_BUCKET, AWS_DEFAULT_REGION or AWS_REGION, AWS_ENDPOINT_URL (optional, for a
local endpoint), LOG_LEVEL (INFO).
"""
from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote_plus

from domain.avatars import AvatarRefused
from lib.avatars import AvatarBucket
from lib.images import square_jpeg
from lib.lambda_support import client, json_logger

log = json_logger("avatar-processing")

_bucket: AvatarBucket | None = None


def _get_bucket() -> AvatarBucket:
    # Made on the first invocation and kept for the container's life (warm invocations reuse it).
    global _bucket
    if _bucket is None:
        _bucket = AvatarBucket(client("s3"), os.environ["ASSETS_BUCKET"])
    return _bucket


def reset() -> None:
    """Forget the cached client (the next invocation reads the environment again)."""
    global _bucket
    _bucket = None


def upload_keys(message_body: str, bucket: str) -> list[str]:
    """The keys an SQS message's S3 notice names in `bucket` (none for S3's test event, or for
    a body that is no notice: nothing to retry)."""
    try:
        notice = json.loads(message_body)
    except ValueError:
        log.warning("not an S3 notice, dropped: %.200s", message_body)
        return []
    if not isinstance(notice, dict):
        return []
    keys = []
    for record in notice.get("Records") or []:
        s3 = record.get("s3") if isinstance(record, dict) else None
        if not isinstance(s3, dict) or (s3.get("bucket") or {}).get("name") != bucket:
            continue
        key = (s3.get("object") or {}).get("key")
        if isinstance(key, str):
            keys.append(unquote_plus(key))  # S3 notices carry keys URL-encoded
    return keys


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = _get_bucket()
    failures = []
    for message in event.get("Records") or []:
        try:
            for key in upload_keys(message.get("body") or "", bucket.bucket):
                try:
                    made = bucket.process(key, square_jpeg)
                    if made:
                        log.info("avatar %s made from %s", made, key)
                except AvatarRefused as refused:
                    log.warning("upload %s refused (%s): %s", key, refused.code, refused)
        except Exception:
            log.exception("message %s failed: given back to the queue", message.get("messageId"))
            failures.append({"itemIdentifier": message.get("messageId")})
    return {"batchItemFailures": failures}
