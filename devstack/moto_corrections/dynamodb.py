"""Corrections to moto's DynamoDB (devstack/moto_corrections/__init__.py lists them all): requests
applied one at a time (1), transactions that save only what they touch (2), a Query that looks at
its partition only (3), an index that lags when harsh (6), and no collector pauses (7)."""
from __future__ import annotations

import bisect
import copy
import gc
import inspect
import operator
import threading
import time
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import StreamShard, Table

from devstack import harsh

# Held by every DynamoDB, DynamoDB Streams and Cognito request (1), and by a snapshot of the state
# (devstack/moto_state.py).
LOCK = threading.RLock()
# The harshness in force (off unless LOCAL_HARSH* says otherwise); set by install().
_harsh = harsh.State(harsh.Harshness())


def use_harshness(state: harsh.State) -> None:
    global _harsh
    _harsh = state


# Requests that change nothing kept across restarts (devstack/moto_state.py).
READS = {f"DynamoDB_20120810.{name}" for name in (
    "GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource")}


def is_s3_write(environ: dict[str, Any]) -> bool:
    """An S3 request that may change something (the avatars the state file keeps)."""
    if environ.get("REQUEST_METHOD") not in ("PUT", "POST", "DELETE"):
        return False
    signed = environ.get("HTTP_AUTHORIZATION", "") + environ.get("QUERY_STRING", "")
    return "/s3/aws4_request" in signed or "%2Fs3%2Faws4_request" in signed


class SerializedDynamoDB:
    """WSGI middleware: DynamoDB, DynamoDB Streams and Cognito requests, and S3's writes, run one
    at a time (so that a snapshot of the state never sees one half-done), and one that may change
    something tells `on_change`."""

    def __init__(self, app: Callable, on_change: Callable[[], None] = lambda: None):
        self.app = app
        self.on_change = on_change

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(("DynamoDB", "AWSCognitoIdentityProviderService")):
            with LOCK:
                # Read the whole response inside the lock: the work may happen while iterating.
                response = list(self.app(environ, start_response))
            if target not in READS and not target.startswith("DynamoDBStreams"):
                self.on_change()
            return response
        if not target and is_s3_write(environ):
            with LOCK:
                response = list(self.app(environ, start_response))
            self.on_change()
            return response
        return self.app(environ, start_response)


class CopyWithoutTables:
    """Stands in for the `copy` module inside moto's DynamoDB backend: tables are not deep-copied
    (transact_write_items below keeps what it needs); everything else is copied as before."""

    def deepcopy(self, obj: Any, memo: Any = None) -> Any:
        return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _key_of(table: Table, op_type: str, op: dict[str, Any]) -> tuple[DynamoType, DynamoType | None] | None:
    attrs = op.get("Item") if op_type == "Put" else op.get("Key")
    if not attrs or table.hash_key_attr not in attrs:
        return None
    hash_key = DynamoType(attrs[table.hash_key_attr])
    range_key = None
    if table.range_key_attr is not None:
        if table.range_key_attr not in attrs:
            return None
        range_key = DynamoType(attrs[table.range_key_attr])
    return hash_key, range_key


def _restore(table: Table, hash_key: DynamoType, range_key: DynamoType | None, item: Any) -> None:
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        if hash_key in table.items:
            table.items[hash_key].pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item


MOTO_TRANSACT_WRITE_ITEMS = DynamoDBBackend.transact_write_items


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    saved = []
    stream_lengths = {}
    for entry in transact_items:
        if len(entry) != 1:
            continue  # moto itself refuses these before writing anything
        op_type, op = next(iter(entry.items()))
        table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        if table is None:
            continue
        key = _key_of(table, op_type, op)
        if key is not None:
            try:
                current = table.get_item(*key)
            except Exception:  # an invalid key: moto reports it, nothing is written for it
                continue
            saved.append((table, key, copy.deepcopy(current)))
        if table.stream_shard is not None:
            stream_lengths[id(table)] = (table.stream_shard, len(table.stream_shard.items))
    try:
        MOTO_TRANSACT_WRITE_ITEMS(self, transact_items)
    except Exception:
        for table, (hash_key, range_key), item in reversed(saved):
            _restore(table, hash_key, range_key, item)
            _reindex(table, (hash_key, range_key), item)
        for shard, length in stream_lengths.values():
            del shard.items[length:]
        raise


_moto_cast_value = DynamoType.cast_value.fget  # type: ignore[attr-defined]


def cast_value(self: DynamoType) -> Any:
    # The comparison moto makes for every key in every sort: strings and numbers straight away.
    if self.type == "S":
        return self.value
    if self.type == "N":
        return Decimal(self.value)
    return _moto_cast_value(self)


_moto_query = Table.query


def _same(a: DynamoType | None, b: DynamoType) -> bool:
    return a is not None and a.type == b.type and a.value == b.value


_raw_value = operator.attrgetter("value")


def _page_candidates(table: Table, partition: dict, query_args: dict[str, Any]) -> list | None:
    """For a plain page of a partition with a string sort key (no key condition on it): the items
    that can be on the page, plus one to tell whether more follow, picked without sorting the
    partition. None where that does not apply."""
    if table.range_key_type != "S":
        return None
    range_comparison = query_args.get("range_comparison")
    limit = query_args.get("limit")
    start_key = query_args.get("exclusive_start_key")
    forward = query_args.get("scan_index_forward", True)
    if range_comparison is not None or not limit:
        return None
    # The partition maps each sort key (a DynamoType) to its item: sort the keys' raw strings, a
    # C-level sort that is near-linear on a partition written in time order.
    ascending = sorted(partition, key=_raw_value)
    start, end = 0, len(ascending)
    if start_key:
        try:
            after = start_key[table.range_key_attr]["S"]
        except (KeyError, TypeError):
            return None
        if forward:
            start = bisect.bisect_right(ascending, after, key=_raw_value)
        else:
            end = bisect.bisect_left(ascending, after, key=_raw_value)
    page = ascending[start:start + limit + 1] if forward else ascending[max(start, end - limit - 1):end][::-1]
    return [partition[k] for k in page]


def _every_item(table: Table) -> Iterator[Any]:
    """The table's items in no order (moto's all_items sorts them all first)."""
    for partition in table.items.values():
        yield from (partition.values() if table.range_key_attr else [partition])


class IndexBuckets:
    """For one table attribute that an index is keyed on: the keys of the items holding each
    value. Built on the first Query of an index on that attribute, then kept current from the
    table's stream of changes (moto's StreamShard.add sees every put, delete and update, in a
    transaction or not), so that a Query on an index looks at its partition only, as on DynamoDB.
    Lives on the stream shard it follows: a table without a stream, or with a new one, is read
    as moto reads it, or indexed afresh."""

    def __init__(self, name: str, table: Table) -> None:
        self.name = name
        self.keys_by_value: dict[tuple[str, Any], dict[tuple[Any, Any], None]] = {}
        self.value_by_key: dict[tuple[Any, Any], tuple[str, Any]] = {}
        for item in _every_item(table):
            self.reindex(_item_key(item), item)

    def reindex(self, key: tuple[Any, Any], item: Any) -> None:
        """`key` now holds `item` (None: nothing)."""
        before = self.value_by_key.pop(key, None)
        if before is not None:
            holders = self.keys_by_value[before]
            holders.pop(key, None)
            if not holders:
                del self.keys_by_value[before]
        value = item.attrs.get(self.name) if item is not None else None
        if value is None or value.type not in ("S", "N", "B"):
            return  # not in the index: DynamoDB indexes only scalar key values
        bucket = (value.type, value.value)
        self.value_by_key[key] = bucket
        self.keys_by_value.setdefault(bucket, {})[key] = None

    def holders(self, table: Table, value: DynamoType) -> list[Any]:
        # .get, not get_item: table.items is a defaultdict, and a lookup must not add a partition
        found = (table.items.get(hash_key, {}).get(range_key) if table.range_key_attr
                 else table.items.get(hash_key)
                 for hash_key, range_key in self.keys_by_value.get((value.type, value.value), ()))
        return [item for item in found if item is not None]


def _index_buckets(table: Table, name: str) -> IndexBuckets | None:
    shard = table.stream_shard
    if shard is None:
        return None
    buckets = getattr(shard, "index_buckets", None)
    if buckets is None:
        buckets = shard.index_buckets = {}
    if name not in buckets:
        buckets[name] = IndexBuckets(name, table)
    return buckets[name]


def _reindex(table: Table, key: tuple[Any, Any], item: Any) -> None:
    shard = table.stream_shard
    for buckets in (getattr(shard, "index_buckets", None) or {}).values() if shard else ():
        buckets.reindex(key, item)


MOTO_QUERY_SIGNATURE = inspect.signature(_moto_query)
# The arguments of moto's Table.query that the correction reads, by name.
QUERY_ARGUMENTS = ("hash_key", "range_comparison", "limit", "exclusive_start_key",
                   "scan_index_forward", "index_name", "hash_key_conditions")


def query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
    """moto's Query, shown only the items that can match its hash key."""
    bound = MOTO_QUERY_SIGNATURE.bind(self, hash_key, *args, **kwargs).arguments
    index_name = bound.get("index_name")
    hash_conditions = bound.get("hash_key_conditions") or []
    if not index_name and hash_key is not None and self.range_key_attr is not None:
        partition = self.items[hash_key] if hash_key in self.items else {}
        candidates = _page_candidates(self, partition, bound)
        if candidates is None:
            candidates = list(partition.values())
    elif index_name and len(hash_conditions) == 1:
        name, value = hash_conditions[0]
        buckets = _index_buckets(self, name)
        if buckets is not None:
            matching = [item for item in buckets.holders(self, value)
                        if _same(item.attrs.get(name), value)]
        else:
            matching = [item for item in _every_item(self) if _same(item.attrs.get(name), value)]
        # an eventually consistent index: as it was before the latest writes, when harsh
        lagged = harsh.lagging_view(getattr(self, "harsh_changes", None), matching, _item_key,
                                    _harsh.harshness.gsi_lag_ms / 1000)
        candidates = [item for item in lagged if _same(item.attrs.get(name), value)]
    else:
        return _moto_query(self, hash_key, *args, **kwargs)
    self.all_items = lambda: candidates  # type: ignore[method-assign]  # for this call only
    try:
        return _moto_query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


def _item_key(item: Any) -> tuple[Any, Any]:
    return item.hash_key, item.range_key




MOTO_STREAM_ADD = StreamShard.add


def stream_add(self: StreamShard, old: Any, new: Any) -> None:
    """moto's own record of every change to a table (put, delete, update, in a transaction or
    not), also kept for a lagging index while one is asked for."""
    lag = _harsh.harshness.gsi_lag_ms / 1000
    if lag > 0:
        item = new if new is not None else old
        log = getattr(self.table, "harsh_changes", None)
        if log is None:
            log = self.table.harsh_changes = harsh.ChangeLog()
        log.record(_item_key(item), old, time.monotonic(), lag)
    _reindex(self.table, _item_key(new if new is not None else old), new)
    MOTO_STREAM_ADD(self, old, new)


def freeze_after_full_collections() -> None:
    """moto holds the local table, and every stream record, as Python objects. At tens of
    thousands of items a full collection looks at millions of them and holds up every request in
    flight for half a second, as DynamoDB never does (the benchmark's p99s at concurrency 8 were
    these pauses, API and store alike). So after each full collection its survivors, long-lived by
    then, leave the collector's view (`gc.freeze`), and the next one looks only at what came
    since. They are still freed when their last reference goes; only a reference cycle among them
    would stay: moto's items and records form none, a table and its stream do (`delete_table`)."""
    if freeze_survivors not in gc.callbacks:
        gc.callbacks.append(freeze_survivors)


def freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """The garbage collector's callback (gc.callbacks): after a full collection, freeze."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


_moto_delete_table = DynamoDBBackend.delete_table


def delete_table(self: DynamoDBBackend, name: str) -> Table:
    """moto's DeleteTable, then everything frozen back in the collector's view: a table and its
    stream refer to each other, a cycle that only the collector frees, so a deleted table would
    otherwise stay in memory until the server stops. The next full collection looks at
    everything once (tables are rarely deleted but by the tests' fixtures and bin/ddb/drop)."""
    table = _moto_delete_table(self, name)
    gc.unfreeze()
    return table


