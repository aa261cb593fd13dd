"""A thin boto3 helper for one DynamoDB table, and the one place where DynamoDB's errors become
the domain's (`KeyTaken`, `WriteConflict`, `StoreUnavailable`, `StoreError`).

It knows DynamoDB, not Cruddur: keys are `pk` and `sk`, items are plain dicts, and each call says
what it wants (a condition as "unless the key exists", "only if these attributes still hold",
a key range, a projection) in Python terms. What the items mean, which keys they live under and
in what order they are written is the conversation store's (lib/conversations/). The tests hold
an in-memory twin of this class (tests/memory_table.py) to the same contract.

It needs boto3 only (and the domain's errors and times): both table Lambdas ship it beside their handlers.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from domain.errors import Unavailable
from domain.times import epoch_now

if TYPE_CHECKING:
    from lib.config import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 25  # BatchWriteItem's limit

# DynamoDB errors that mean "not now" rather than "never": botocore has already retried them.
RETRYABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionInProgressException",
    "LimitExceededException",
})
# The same, as a cancelled transaction gives them per operation.
RETRYABLE_CANCELLATION_CODES = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


def deserialize(image: Mapping[str, Any]) -> dict[str, Any]:
    # Strings, nearly every value of this table, directly: TypeDeserializer's dispatch for each
    # of a page's ~150 values is a noticeable part of a request's CPU.
    return {k: v["S"] if "S" in v else _deserializer.deserialize(v) for k, v in image.items()}


def key_of(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


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

    def __init__(self, code: str, message: str, operation: str = ""):
        # what was asked, and what the store said: "UpdateTable refused: ValidationException: ..."
        said = f"{code}: {message}" if message else f"{code} (the store gave no message)"
        super().__init__(f"{operation} refused: {said}" if operation else said)
        self.code, self.operation = code, operation


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
    return StoreError(code or "error", details.get("Message", ""), getattr(error, "operation_name", ""))


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    # sk to resume after when more may follow, else None
    next_sk: str | None
    # ConsumedCapacity as DynamoDB reported it, when asked for
    consumed: dict[str, Any] | None = None


class _Expression:
    """Names and values of one request's expressions, as placeholders (#n0, :v0), so that no
    attribute name can clash with one of DynamoDB's reserved words."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _serializer.serialize(value)
        return placeholder

    def holds(self, expect: Mapping[str, Any]) -> list[str]:
        """"Each attribute of `expect` holds its value (None: is absent)", one clause each."""
        return [f"attribute_not_exists({self.name(a)})" if v is None else f"{self.name(a)} = {self.value(v)}"
                for a, v in expect.items()]

    def still(self, expect: Mapping[str, Any]) -> str:
        """"The item exists and each attribute of `expect` holds its value (None: is absent)"."""
        return " AND ".join(["attribute_exists(pk)", *self.holds(expect)])

    def changes(self, values: Mapping[str, Any]) -> str:
        """An UpdateExpression that sets `values`, and removes the attributes whose value is None."""
        sets = [f"{self.name(a)} = {self.value(v)}" for a, v in values.items() if v is not None]
        removes = [self.name(a) for a, v in values.items() if v is None]
        return " ".join(([f"SET {', '.join(sets)}"] if sets else []) +
                        ([f"REMOVE {', '.join(removes)}"] if removes else []))

    def arguments(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


class Ddb:
    """One table through one boto3 client. Holds no state beyond the client and the table's name.
    Every call's errors come out translated (see `translate`)."""

    def __init__(self, settings: "Settings | str", client: Any | None = None):
        """The table `settings.ddb_table` (or the table named so, with its client)."""
        self.table: str = settings if isinstance(settings, str) else settings.ddb_table
        if client is None:
            # here rather than at the top: the stream Lambda ships this file without lib/aws.py
            # (it always gives its client)
            from lib import aws
            client = aws.client(settings, "dynamodb")
        self.client = client

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as error:
            raise translate(error) from error
        except BotoCoreError as error:  # unreachable, timed out, or a response cut short
            raise StoreUnavailable(reason=f"{type(error).__name__}: {error}") from error

    # -- the table itself (scripts and the local stack) ------------------------------------------
    def table_exists(self) -> bool:
        return self.describe() is not None

    def table_active(self) -> bool:
        """Whether the table answers and is ACTIVE (DescribeTable: no capacity units spent)."""
        try:
            described = self.describe()
        except (StoreUnavailable, StoreError):
            return False
        return described is not None and described["TableStatus"] in ("ACTIVE", "UPDATING")

    def describe(self) -> dict[str, Any] | None:
        """DescribeTable's description of the table; None when there is no such table."""
        try:
            return self._call("describe_table", TableName=self.table)["Table"]
        except StoreError as error:
            if error.code == "ResourceNotFoundException":
                return None
            raise

    def update_table(self, **changes: Any) -> None:
        """UpdateTable with `changes` (one kind of change per call, as DynamoDB requires), then
        wait until the table is ACTIVE again."""
        self._call("update_table", TableName=self.table, **changes)
        self.client.get_waiter("table_exists").wait(TableName=self.table,
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def is_empty(self) -> bool:
        """Whether the table holds no item (a Scan of one item: cheap on any table)."""
        return not self._call("scan", TableName=self.table, Limit=1).get("Items")

    def create_table(self, definition: Mapping[str, Any]) -> bool:
        """Create the table from CreateTable arguments (TableName is this table's) and wait until
        it is ACTIVE; False when it already exists."""
        if self.table_exists():
            return False
        self._call("create_table", **{**definition, "TableName": self.table})
        self.client.get_waiter("table_exists").wait(TableName=self.table,
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        return True

    def ensure_ttl(self, attribute: str) -> str:
        """TTL on `attribute`, so that DynamoDB deletes items once past it: the table's TTL status
        afterwards. Left alone when already on (DynamoDB refuses to enable it twice) or on another
        attribute (that is the operator's choice; we only warn)."""
        status, current = self.ttl()
        if status in ("ENABLED", "ENABLING"):
            if current != attribute:
                log.warning("table %s has TTL on %s, not %s: expired items will not be deleted",
                            self.table, current, attribute)
            return status
        if status == "DISABLING":  # DynamoDB refuses a change until this ends (up to an hour)
            log.warning("table %s is disabling TTL: enable it on %s later", self.table, attribute)
            return status
        answer = self._call("update_time_to_live", TableName=self.table,
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute})
        return "ENABLED" if answer["TimeToLiveSpecification"]["Enabled"] else status

    def ttl(self) -> tuple[str, str | None]:
        """The table's TTL status (DISABLED, ENABLING, ENABLED, DISABLING) and attribute."""
        described = self._call("describe_time_to_live", TableName=self.table)["TimeToLiveDescription"]
        return described.get("TimeToLiveStatus", "DISABLED"), described.get("AttributeName")

    def delete_table(self) -> bool:
        """Delete the table; False when it did not exist."""
        if not self.table_exists():
            return False
        self._call("delete_table", TableName=self.table)
        return True

    # -- reads ---------------------------------------------------------------------------------
    def get(self, key: Mapping[str, str], consistent: bool = True,
            attributes: Iterable[str] | None = None) -> dict[str, Any] | None:
        expression = _Expression()
        extra: dict[str, Any] = {}
        if attributes:
            extra["ProjectionExpression"] = ", ".join(expression.name(a) for a in attributes)
        response = self._call("get_item", TableName=self.table, Key=serialize(key),
                              ConsistentRead=consistent, **extra, **expression.arguments())
        item = response.get("Item")
        return deserialize(item) if item else None

    def _query_arguments(self, pk: str, *, limit: int | None, newest_first: bool,
                         after_sk: str | None, sk_from: str | None, sk_to: str | None,
                         consistent: bool, attributes: Iterable[str] | None,
                         where: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any]:
        expression = _Expression()
        condition = f"pk = {expression.value(pk)}"
        if sk_from is not None and sk_to is not None:
            condition += f" AND sk BETWEEN {expression.value(sk_from)} AND {expression.value(sk_to)}"
        elif sk_from is not None:
            condition += f" AND sk >= {expression.value(sk_from)}"
        elif sk_to is not None:
            condition += f" AND sk <= {expression.value(sk_to)}"
        kwargs: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": condition,
                                  "ScanIndexForward": not newest_first, **extra}
        if consistent:
            kwargs["ConsistentRead"] = True
        if limit is not None:
            kwargs["Limit"] = limit
        if after_sk is not None:
            kwargs["ExclusiveStartKey"] = serialize({"pk": pk, "sk": after_sk})
        if where:
            kwargs["FilterExpression"] = " AND ".join(expression.holds(where))
        if attributes:
            kwargs["ProjectionExpression"] = ", ".join(expression.name(a) for a in attributes)
        return {**kwargs, **expression.arguments()}

    def query(self, pk: str, *, limit: int | None = None, newest_first: bool = False,
              after_sk: str | None = None, sk_from: str | None = None, sk_to: str | None = None,
              consistent: bool = False, attributes: Iterable[str] | None = None,
              where: Mapping[str, Any] | None = None, **extra: Any) -> Page:
        """One page of a partition in sk order (newest first when asked): at most `limit` items
        read, after `after_sk`, with sk_from <= sk <= sk_to, of those only the ones whose
        attributes equal `where`'s (None: absent; a filter: the items it drops count in `limit`
        and are paid for too), with only `attributes`. `extra` goes to DynamoDB as it is (the
        benchmark's ReturnConsumedCapacity)."""
        response = self._call("query", **self._query_arguments(
            pk, limit=limit, newest_first=newest_first, after_sk=after_sk, sk_from=sk_from,
            sk_to=sk_to, consistent=consistent, attributes=attributes, where=where, **extra))
        last = response.get("LastEvaluatedKey")
        return Page([deserialize(i) for i in response.get("Items", [])],
                    last["sk"]["S"] if last else None, response.get("ConsumedCapacity"))

    def query_items(self, pk: str, *, newest_first: bool = False, sk_from: str | None = None,
                    sk_to: str | None = None, consistent: bool = False,
                    attributes: Iterable[str] | None = None,
                    where: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item `query` would give, page after page; the next page is asked for only when
        the caller goes on past this one's last item."""
        kwargs = self._query_arguments(pk, limit=None, newest_first=newest_first, after_sk=None,
                                       sk_from=sk_from, sk_to=sk_to, consistent=consistent,
                                       attributes=attributes, where=where)
        for response in self._pages("query", kwargs):
            yield from (deserialize(i) for i in response.get("Items", []))

    def query_index(self, index: str, attribute: str, value: str) -> list[dict[str, Any]]:
        """Every item of a global secondary index whose hash key `attribute` is `value`. An index
        is eventually consistent: it may not show a write yet, or still show what has changed."""
        expression = _Expression()
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": index,
            "KeyConditionExpression": f"{expression.name(attribute)} = {expression.value(value)}",
            **expression.arguments()}
        return [deserialize(i) for response in self._pages("query", kwargs)
                for i in response.get("Items", [])]

    def _pages(self, operation: str, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The answers of a Query or Scan, page after page; the next page is asked for only when
        the caller goes on past this one."""
        while True:
            response = self._call(operation, **kwargs)
            yield response
            if "LastEvaluatedKey" not in response:
                return
            kwargs = {**kwargs, "ExclusiveStartKey": response["LastEvaluatedKey"]}

    # -- writes --------------------------------------------------------------------------------
    def put(self, item: Mapping[str, Any]) -> None:
        """Put (or replace) one item."""
        self._call("put_item", TableName=self.table, Item=serialize(item))

    def put_new(self, item: Mapping[str, Any], expires: str | None = None) -> None:
        """Put one item unless its key exists: else KeyTaken, holding what holds the key. With
        `expires` (the table's TTL attribute), an item held past that time counts as absent:
        DynamoDB's TTL deletes it up to days late."""
        if expires is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            expression = _Expression()
            condition = {"ConditionExpression": f"attribute_not_exists(pk) OR "
                                                f"{expression.name(expires)} < {expression.value(epoch_now())}",
                         **expression.arguments()}
        self._call("put_item", TableName=self.table, Item=serialize(item),
                   ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition)

    def update_if(self, key: Mapping[str, str], values: Mapping[str, Any],
                  expect: Mapping[str, Any]) -> None:
        """Set `values` on the item at `key` (a None value removes that attribute) only if it
        exists and each attribute of `expect` still holds its value (None: is still absent);
        else KeyTaken, holding the item as it is now when there is one."""
        expression = _Expression()
        condition = expression.still(expect)
        self._call("update_item", TableName=self.table, Key=serialize(key),
                   UpdateExpression=expression.changes(values), ConditionExpression=condition,
                   ReturnValuesOnConditionCheckFailure="ALL_OLD", **expression.arguments())

    def update_if_newer(self, key: Mapping[str, str], values: Mapping[str, Any], expect: Mapping[str, Any],
                        version: str) -> bool:
        """Set `values` on the item at `key` only if it exists, each attribute of `expect` still
        holds its value, and the item's `version` attribute is absent or lower than the one in
        `values`: a change delivered late or twice never overwrites a newer one. False when it
        did not write."""
        expression = _Expression()
        name = expression.name(version)
        condition = (f"{expression.still(expect)} AND (attribute_not_exists({name}) OR "
                     f"{name} < {expression.value(values[version])})")
        try:
            self._call("update_item", TableName=self.table, Key=serialize(key),
                       UpdateExpression=expression.changes(values), ConditionExpression=condition,
                       **expression.arguments())
            return True
        except KeyTaken:
            return False

    def delete_if(self, key: Mapping[str, str], expect: Mapping[str, Any]) -> bool:
        """Delete the item at `key` only if it exists and each attribute of `expect` still holds
        its value (None: is still absent); False when it did not."""
        expression = _Expression()
        try:
            self._call("delete_item", TableName=self.table, Key=serialize(key),
                       ConditionExpression=expression.still(expect), **expression.arguments())
            return True
        except KeyTaken:
            return False

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
        for response in self._pages("scan", {"TableName": self.table}):
            items = response.get("Items", [])
            if on_page:
                on_page(len(items))
            yield from (deserialize(i) for i in items)
