"""Correction 10 to moto's DynamoDB Streams: GetRecords written as JSON directly, where moto
writes it through botocore's output model at about a millisecond a record."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

from moto.dynamodbstreams.responses import DynamoDBStreamsHandler


def get_records(self: DynamoDBStreamsHandler) -> tuple[str, dict[str, str]]:
    """GetRecords, moto's own records and iterator, as JSON written directly (correction 10)."""
    limit = self._get_param("Limit") or 1000
    answer = self.backend.get_records(self._get_param("ShardIterator"), limit)
    return json.dumps(answer, default=_wire_value), {"Content-Type": "application/x-amz-json-1.0"}


def _wire_value(value: Any) -> Any:
    """What moto's serializer writes for the values JSON has no type for: a record's
    ApproximateCreationDateTime (a naive UTC datetime) as epoch seconds to the millisecond, and a
    binary attribute's bytes in base64."""
    if isinstance(value, datetime):
        return round(value.replace(tzinfo=timezone.utc).timestamp(), 3)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON")


