"""The DynamoDB adapter: the single-table layout, a thin boto3 helper over it, and the one place
where DynamoDB's errors become the domain's (`KeyTaken`, `WriteConflict`, `StoreUnavailable`).

The key layout's names are in lib/layout.py (the stream Lambda ships that file too), and every
call that reads or writes them is here.

Times are UTC ISO-8601 with microseconds and +00:00 so that string order is time order.
A group's uuid is derived from its two participants, so "do these two already share a group?"
needs no lookup.
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping

from dataclasses import dataclass

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from lib import aws
from lib.config import Settings
from lib.errors import Unavailable
# the layout's names, also read as ddb.GROUP_PREFIX and so on where the table is used
from lib.layout import (GROUP_PREFIX, GSI_NAME, HEADER_PREFIX, HEADER_SK, IDEMPOTENCY_PREFIX,  # noqa: F401
                        LAYOUT_KEY, LAYOUT_VERSION, MESSAGE_PREFIX)

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
BATCH_SIZE = 25  # BatchWriteItem's limit

# Fixed namespace for deriving a group's uuid from its participants (uuid5).
GROUP_NAMESPACE = uuid.UUID("6f1c3c55-8d3e-4a53-9d0b-6f8f3b1a2c4d")

# DynamoDB errors that mean "not now" rather than "never": botocore has already retried them.
RETRYABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionInProgressException",
    "LimitExceededException",
})
# The same, as a cancelled transaction gives them per operation.
RETRYABLE_CANCELLATION_CODES = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})
# "Unless its key exists". Only idempotency records carry expires_at, and a key only ever holds
# items of one kind: a record's key asks for the first condition, where a record past its
# expires_at (DynamoDB's TTL deletes it up to days late) counts as absent; every other key asks
# for the second, which costs the store less to evaluate (no comparison, no value to send).
NOT_EXISTS_OR_EXPIRED = "attribute_not_exists(pk) OR expires_at < :now"
NOT_EXISTS = "attribute_not_exists(pk)"
TTL_ATTRIBUTE = "expires_at"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def group_uuid_for(user_a: str, user_b: str) -> str:
    """The one message_group_uuid two users share, whoever writes first."""
    low, high = sorted([str(user_a), str(user_b)])
    return str(uuid.uuid5(GROUP_NAMESPACE, f"{low}:{high}"))


def group_pk(user_uuid: str) -> str:
    return f"{GROUP_PREFIX}{user_uuid}"


def message_pk(message_group_uuid: str) -> str:
    return f"{MESSAGE_PREFIX}{message_group_uuid}"


def header_key(message_group_uuid: str) -> dict[str, str]:
    return {"pk": f"{HEADER_PREFIX}{message_group_uuid}", "sk": HEADER_SK}


def idempotency_key(user_uuid: str, key: str) -> dict[str, str]:
    return {"pk": f"{IDEMPOTENCY_PREFIX}{user_uuid}", "sk": key}


def group_row(owner_uuid: str, other: Mapping[str, str], message_group_uuid: str,
              message: str, sk: str, unread_count: int | None = None,
              read_up_to: str | None = None) -> dict[str, Any]:
    """The group row `owner` sees: it names the other participant, and (when given) how many of
    the other's messages after the owner's read marker it counts, up to its own sk."""
    row: dict[str, Any] = {
        "pk": group_pk(owner_uuid),
        "sk": sk,
        "message_group_uuid": message_group_uuid,
        "message": message,
        "user_uuid": str(other["uuid"]),
        "user_display_name": other["display_name"],
        "user_handle": other["handle"],
    }
    if unread_count is not None:
        row["unread_count"] = unread_count
    if read_up_to:
        row["read_up_to"] = read_up_to
    return row


def message_rows(sender: Mapping[str, str], recipient: Mapping[str, str], message_group_uuid: str,
               message: str, sk: str) -> list[dict[str, Any]]:
    """Both rows of a conversation whose last message is `message`, by `sender`, as a first
    message leaves them: read by its sender (sending marks read), one unread message for the
    recipient (who had read everything before it)."""
    return [group_row(sender["uuid"], recipient, message_group_uuid, message, sk, 0, sk),
            group_row(recipient["uuid"], sender, message_group_uuid, message, sk, 1)]


def message_item(message_group_uuid: str, sender: Mapping[str, str], message: str,
                 created_at: str, message_uuid: str | None = None) -> dict[str, str]:
    return {
        "pk": message_pk(message_group_uuid),
        "sk": created_at,
        "message_uuid": message_uuid or str(uuid.uuid4()),
        "message": message,
        "user_uuid": str(sender["uuid"]),
        "user_display_name": sender["display_name"],
        "user_handle": sender["handle"],
    }


def header_item(message_group_uuid: str, participants: Iterable[str], created_at: str,
                profiles: Mapping[str, Mapping[str, str]] | None = None,
                first_message_uuid: str | None = None) -> dict:
    """The group's header. `profiles` (user uuid -> display_name and handle) lets the stream
    Lambda make a participant's row should the API stop before writing it; `first_message_uuid`
    lets the request that creates the group tell its own header (found by the SDK's retry of a
    put whose response was lost) from a concurrent creator's."""
    item = {**header_key(message_group_uuid), "participants": sorted(str(p) for p in participants),
            "created_at": created_at}
    if first_message_uuid:
        item["first_message_uuid"] = first_message_uuid
    if profiles:
        item["profiles"] = {str(u): {"display_name": p["display_name"], "handle": p["handle"]}
                            for u, p in profiles.items()}
    return item


def profiles_of(*users: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """header_item's `profiles` of users as the API holds them (uuid, display_name, handle)."""
    return {str(u["uuid"]): {"display_name": u["display_name"], "handle": u["handle"]} for u in users}


def _epoch_now() -> int:
    """The clock TTL reads: whole seconds since the epoch."""
    return int(time.time())


def _now() -> dict[str, dict[str, str]]:
    return {":now": {"N": str(_epoch_now())}}


def expired(item: Mapping[str, Any]) -> bool:
    """Whether TTL may delete the item by now: NOT_EXISTS_OR_EXPIRED's rule, read on an item in
    hand (an item without expires_at never expires)."""
    return TTL_ATTRIBUTE in item and int(item[TTL_ATTRIBUTE]) < _epoch_now()


def layout_item() -> dict[str, Any]:
    """The mark of a table in the current layout (every group has its header)."""
    return {**LAYOUT_KEY, "version": LAYOUT_VERSION, "written_at": now_iso()}


def message_group_uuid_of(item: Mapping[str, Any]) -> str:
    """The group a message item belongs to (messages carry it in their key only)."""
    return item["pk"][len(MESSAGE_PREFIX):]


def projection(attributes: Iterable[str]) -> dict[str, Any]:
    """Query/GetItem arguments that read only these attributes (with placeholders, so that no name
    can clash with a reserved word). The capacity is the whole item's either way; what it saves is
    the client's work parsing attributes nobody uses."""
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


def deserialize(image: Mapping[str, Any]) -> dict[str, Any]:
    # Strings, nearly every value of this table, directly: TypeDeserializer's dispatch for each
    # of a page's ~150 values is a noticeable part of a request's CPU.
    return {k: v["S"] if "S" in v else _deserializer.deserialize(v) for k, v in image.items()}


def table_definition(name: str, provisioned: bool = False, read_capacity: int = 5,
                     write_capacity: int = 5) -> dict[str, Any]:
    """CreateTable arguments for the messages table, its GSI and its stream."""
    definition: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "message_group_uuid", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [{
            "IndexName": GSI_NAME,
            "KeySchema": [
                {"AttributeName": "message_group_uuid", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    }
    if provisioned:
        throughput = {"ReadCapacityUnits": read_capacity, "WriteCapacityUnits": write_capacity}
        definition["BillingMode"] = "PROVISIONED"
        definition["ProvisionedThroughput"] = throughput
        definition["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] = dict(throughput)
    else:
        definition["BillingMode"] = "PAY_PER_REQUEST"
    return definition


class KeyTaken(Exception):
    """A put "unless its key exists" found keys taken: `positions` are those of the refused items,
    in the order they were given, and `held` what holds each key now (when DynamoDB said). Nothing
    was written by this request.

    What holds a key may be this very write: the SDK retries a write whose response was lost, and
    the retry finds the key taken by the first attempt. `held` lets the caller tell."""

    def __init__(self, positions: frozenset[int], held: Mapping[int, dict[str, Any]] | None = None):
        super().__init__(f"keys taken at positions {sorted(positions)}")
        self.positions = positions
        self.held = dict(held or {})


class WriteConflict(Unavailable):
    """Another transaction on the same items was under way: nothing was written; try again."""

    def __init__(self, *, reason: str):
        super().__init__("write_conflict", detail="too many concurrent writes, try again",
                         retry_after=1)
        self.reason = reason


class StoreUnavailable(Unavailable):
    """DynamoDB throttled us or failed, even after botocore's retries, or cannot be reached."""

    def __init__(self, *, reason: str):
        super().__init__("store_unavailable", detail="DynamoDB is busy or unreachable, try again",
                         retry_after=1)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class StoreError(RuntimeError):
    """DynamoDB refused a request for a reason a retry will not change (a bug, or a table that is
    not as this code expects)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}".strip())
        self.code = code


def cancellation_codes(error: ClientError) -> list[str]:
    """The per-operation reasons of a cancelled transaction ("None" where an operation was fine);
    empty for any other error."""
    return [r.get("Code") or "None" for r in error.response.get("CancellationReasons") or []]


def translate(error: ClientError) -> Exception:
    """DynamoDB's error as the domain's."""
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    reasons = cancellation_codes(error)
    if code == "ConditionalCheckFailedException":
        item = error.response.get("Item")
        return KeyTaken(frozenset({0}), {0: deserialize(item)} if item else None)
    if "ConditionalCheckFailed" in reasons:
        cancelled = error.response.get("CancellationReasons") or []
        return KeyTaken(frozenset(i for i, r in enumerate(reasons) if r == "ConditionalCheckFailed"),
                        {i: deserialize(r["Item"]) for i, r in enumerate(cancelled) if r.get("Item")})
    if (code in RETRYABLE_CODES or RETRYABLE_CANCELLATION_CODES & set(reasons)
            or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500):
        return StoreUnavailable(reason=f"{code} {reasons or ''}".strip())
    if code == "TransactionConflictException" or "TransactionConflict" in reasons:
        return WriteConflict(reason=code)
    return StoreError(code, details.get("Message", ""))


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    # sk to resume after when more may follow, else None
    next_sk: str | None
    # ConsumedCapacity as DynamoDB reported it, when asked for
    consumed: dict[str, Any] | None = None


class Ddb:
    """The messages table through one boto3 client. Holds no state beyond the client and names.
    Every call's errors come out translated (see `translate`)."""

    def __init__(self, settings: Settings, client: Any | None = None):
        self.table = settings.ddb_table
        self.client = client or aws.client(settings, "dynamodb")

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as error:
            raise translate(error) from error
        except BotoCoreError as error:  # unreachable, timed out, or a response cut short
            raise StoreUnavailable(reason=f"{type(error).__name__}: {error}") from error

    # -- the table itself (scripts and the local stack) ------------------------------------------
    def table_exists(self) -> bool:
        try:
            self.client.describe_table(TableName=self.table)
            return True
        except self.client.exceptions.ResourceNotFoundException:
            return False

    def table_active(self) -> bool:
        """Whether the table answers and is ACTIVE (DescribeTable: no capacity units spent)."""
        try:
            status = self._call("describe_table", TableName=self.table)["Table"]["TableStatus"]
        except (StoreUnavailable, StoreError):
            return False
        return status in ("ACTIVE", "UPDATING")

    def create_table(self, provisioned: bool = False, read_capacity: int = 5,
                     write_capacity: int = 5) -> bool:
        """Create the table with its GSI and stream, and TTL on expires_at; False when it already
        exists (its TTL is then turned on if it is off, as on a table the bootcamp created)."""
        if self.table_exists():
            self.ensure_ttl()
            return False
        self._call("create_table", **table_definition(self.table, provisioned, read_capacity,
                                                      write_capacity))
        self.client.get_waiter("table_exists").wait(TableName=self.table,
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        self.ensure_ttl()
        self.put(layout_item())  # a new table holds no group without a header
        return True

    def ensure_ttl(self) -> str:
        """TTL on expires_at, so that DynamoDB deletes idempotency records once expired: the
        table's TTL status afterwards. Left alone when already on (DynamoDB refuses to enable it
        twice) or on another attribute (that is the operator's choice; we only warn)."""
        described = self._call("describe_time_to_live", TableName=self.table)["TimeToLiveDescription"]
        status = described.get("TimeToLiveStatus", "DISABLED")
        if status in ("ENABLED", "ENABLING"):
            if described.get("AttributeName") != TTL_ATTRIBUTE:
                log.warning("table %s has TTL on %s, not %s: idempotency records will not be deleted",
                            self.table, described.get("AttributeName"), TTL_ATTRIBUTE)
            return status
        if status == "DISABLING":  # DynamoDB refuses a change until this ends (up to an hour)
            log.warning("table %s is disabling TTL: enable it on %s later", self.table, TTL_ATTRIBUTE)
            return status
        answer = self._call("update_time_to_live", TableName=self.table,
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE})
        return "ENABLED" if answer["TimeToLiveSpecification"]["Enabled"] else status

    def layout_version(self) -> int:
        """LAYOUT_VERSION once the table is in the current layout; 1 for a table that may hold
        the week-5 backend's groups without headers."""
        item = self.get(LAYOUT_KEY, consistent=False)
        return int(item["version"]) if item else 1

    def delete_table(self) -> bool:
        """Delete the table; False when it did not exist."""
        if not self.table_exists():
            return False
        self._call("delete_table", TableName=self.table)
        return True

    # -- reads ---------------------------------------------------------------------------------
    def query_partition(self, pk: str, limit: int, newest_first: bool = True,
                        after_sk: str | None = None, **extra: Any) -> Page:
        """One page of a partition in sk order."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ScanIndexForward": not newest_first,
            "Limit": limit,
            **extra,
        }
        if after_sk is not None:
            kwargs["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": after_sk}}
        response = self._call("query", **kwargs)
        last = response.get("LastEvaluatedKey")
        return Page([deserialize(i) for i in response.get("Items", [])],
                    last["sk"]["S"] if last else None, response.get("ConsumedCapacity"))

    def messages_page(self, message_group_uuid: str, limit: int,
                      after_sk: str | None = None, **extra: Any) -> Page:
        """Pattern A: a group's messages, newest first."""
        return self.query_partition(message_pk(message_group_uuid), limit, True, after_sk, **extra)

    def groups_page(self, user_uuid: str, limit: int,
                    after_sk: str | None = None, **extra: Any) -> Page:
        """Pattern B: a user's group rows, most recent conversation first."""
        return self.query_partition(group_pk(user_uuid), limit, True, after_sk, **extra)

    def group_rows(self, message_group_uuid: str) -> list[dict]:
        """Both participants' rows of a group, through the GSI."""
        response = self._call(
            "query", TableName=self.table, IndexName=GSI_NAME,
            KeyConditionExpression="message_group_uuid = :g",
            ExpressionAttributeValues={":g": {"S": message_group_uuid}},
        )
        return [deserialize(i) for i in response.get("Items", [])]

    def conversation_between(self, owner_uuid: str, other_uuid: str) -> str | None:
        """The most recent group of `owner`'s rows that names `other`, read from the table
        (consistently): how a week-5 group, whose uuid is not derived from its pair, is found.
        Reads the owner's whole partition: only for tables not yet migrated."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "ScanIndexForward": False,
            "KeyConditionExpression": "pk = :pk", "FilterExpression": "user_uuid = :other",
            "ExpressionAttributeValues": {":pk": {"S": group_pk(owner_uuid)}, ":other": {"S": str(other_uuid)}},
            "ProjectionExpression": "message_group_uuid",
        }
        first = next(self._query_items(kwargs), None)
        return first["message_group_uuid"]["S"] if first else None

    def rows_of(self, owner_uuid: str, message_group_uuid: str) -> list[dict[str, Any]]:
        """`owner`'s rows of the group, oldest first, read from the table itself (consistently):
        what the index does not show yet. Reads the owner's whole partition: the rare case."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk", "FilterExpression": "message_group_uuid = :g",
            "ExpressionAttributeValues": {":pk": {"S": group_pk(owner_uuid)},
                                          ":g": {"S": message_group_uuid}},
        }
        return self._query_all(kwargs)

    def _query_all(self, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a Query, page after page, deserialized."""
        return [deserialize(i) for i in self._query_items(kwargs)]

    def _query_items(self, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """A Query's items as the wire gives them, page after page; the next page is asked for
        only when the caller goes on past this one's last item."""
        while True:
            response = self._call("query", **kwargs)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs = {**kwargs, "ExclusiveStartKey": response["LastEvaluatedKey"]}

    def count_unread(self, message_group_uuid: str, reader_uuid: str, after: str, up_to: str,
                     cap: int) -> int:
        """The messages of the group not sent by `reader` with after < sk <= up_to, counted up
        to `cap` (a consistent Query, oldest first, that stops there). The stream Lambda keeps
        the same count in each row (with its own copy of this loop)."""
        if after >= up_to:
            return 0
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :after AND :up_to",
            "ExpressionAttributeValues": {":pk": {"S": message_pk(message_group_uuid)},
                                          ":after": {"S": after or " "}, ":up_to": {"S": up_to}},
            **projection(("sk", "user_uuid")),
        }
        count = 0
        for item in self._query_items(kwargs):
            if item["sk"]["S"] > after and item.get("user_uuid", {}).get("S") != str(reader_uuid):
                count += 1
                if count >= cap:
                    break
        return count

    def mark_read(self, row: Mapping[str, Any], up_to: str, unread_count: int) -> None:
        """Set the row's read marker and count, if the row is still there, this group's, and
        still carries the marker it was read with; else KeyTaken (holding the row as it is now,
        when it is there)."""
        seen = row.get("read_up_to")
        values: dict[str, Any] = {":up_to": {"S": up_to}, ":count": {"N": str(unread_count)},
                                  ":g": {"S": row["message_group_uuid"]}}
        condition = "attribute_exists(pk) AND message_group_uuid = :g AND "
        if seen:
            condition += "read_up_to = :seen"
            values[":seen"] = {"S": seen}
        else:
            condition += "attribute_not_exists(read_up_to)"
        self._call("update_item", TableName=self.table,
                   Key=serialize({"pk": row["pk"], "sk": row["sk"]}),
                   UpdateExpression="SET read_up_to = :up_to, unread_count = :count",
                   ConditionExpression=condition, ExpressionAttributeValues=values,
                   ReturnValuesOnConditionCheckFailure="ALL_OLD")

    def unread_rows(self, user_uuid: str) -> list[dict[str, Any]]:
        """The user's group rows that count unread messages, newest first: one Query of their
        partition (filtered; further pages only past 1 MB of rows)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ScanIndexForward": False,
            "KeyConditionExpression": "pk = :pk", "FilterExpression": "unread_count > :zero",
            "ExpressionAttributeValues": {":pk": {"S": group_pk(user_uuid)}, ":zero": {"N": "0"}},
            **projection(("sk", "message_group_uuid", "unread_count")),
        }
        return self._query_all(kwargs)

    def get(self, key: Mapping[str, str], consistent: bool = True) -> dict | None:
        response = self._call("get_item", TableName=self.table, Key=serialize(key),
                              ConsistentRead=consistent)
        item = response.get("Item")
        return deserialize(item) if item else None

    # -- writes --------------------------------------------------------------------------------
    def put(self, item: Mapping[str, Any]) -> None:
        """Put (or replace) one item."""
        self._call("put_item", TableName=self.table, Item=serialize(item))

    def put_new(self, item: Mapping[str, Any]) -> None:
        """Put one item unless its key exists: else KeyTaken, holding what holds the key. An item
        that expires (it carries expires_at) replaces one of its kind past its expires_at."""
        condition: dict[str, Any] = (
            {"ConditionExpression": NOT_EXISTS_OR_EXPIRED, "ExpressionAttributeValues": _now()}
            if TTL_ATTRIBUTE in item else {"ConditionExpression": NOT_EXISTS})
        self._call("put_item", TableName=self.table, Item=serialize(item),
                   ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition)

    def batch_write(self, items: Iterable[Mapping[str, Any]],
                    on_progress: Callable[[int], None] | None = None,
                    max_backoff: float = 2.0) -> int:
        """Put items 25 at a time, retrying unprocessed ones with backoff. Returns the number of
        BatchWriteItem calls made."""
        return self._batch([{"PutRequest": {"Item": serialize(i)}} for i in items],
                           on_progress, max_backoff)

    def batch_delete(self, keys: Iterable[Mapping[str, Any]],
                     on_progress: Callable[[int], None] | None = None,
                     max_backoff: float = 2.0) -> int:
        """Delete items by key, 25 at a time, as batch_write puts them."""
        return self._batch([{"DeleteRequest": {"Key": serialize(k)}} for k in keys],
                           on_progress, max_backoff)

    def _batch(self, pending: list[dict[str, Any]], on_progress: Callable[[int], None] | None,
               max_backoff: float) -> int:
        calls = 0
        for start in range(0, len(pending), BATCH_SIZE):
            chunk = pending[start:start + BATCH_SIZE]
            backoff = 0.05
            while chunk:
                response = self._call("batch_write_item", RequestItems={self.table: chunk})
                calls += 1
                unprocessed = response.get("UnprocessedItems", {}).get(self.table, [])
                done = len(chunk) - len(unprocessed)
                if on_progress and done:
                    on_progress(done)
                chunk = unprocessed
                if chunk:
                    log.info("batch write: %d unprocessed items, retrying in %.2fs", len(chunk), backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, max_backoff)
        return calls

    def scan_all(self, on_page: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of the table (a Scan, page by page: for scripts, never for requests)."""
        kwargs: dict[str, Any] = {"TableName": self.table}
        while True:
            response = self._call("scan", **kwargs)
            items = response.get("Items", [])
            if on_page:
                on_page(len(items))
            yield from (deserialize(i) for i in items)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
