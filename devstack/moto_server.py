"""moto's server as the local stack runs it, corrected to behave as DynamoDB does under load.

`python -m devstack.moto_server -H 127.0.0.1 -p PORT` takes moto.server's own arguments. Its
corrections to moto are all local-only (nothing here runs against AWS):

1. Concurrency. moto's server is threaded, but its DynamoDB backend is not thread-safe: a
   cancelled TransactWriteItems restores a snapshot of the whole table, wiping out writes that
   other threads made meanwhile. DynamoDB never loses an acknowledged write, so DynamoDB and
   DynamoDB Streams requests are applied one at a time here (moto is bound by the GIL anyway).
2. Cost. That snapshot is a deep copy of the whole table on every transaction: 4 s per
   transaction at 10,000 items, where DynamoDB takes milliseconds. Here a transaction saves and,
   if cancelled, restores only the items it touches (and the stream records it added).
3. Cost again. A Query sorts every item of the table, then keeps its partition's: its latency grows
   with the table, where DynamoDB's grows with the page. Here a Query looks at its partition only
   (or, on an index, at the items with its hash key, found through buckets kept current from the
   table's stream of changes), and key values compare without moto's general-purpose conversion.
   Results are moto's own: only what it looks through is narrowed.

4. CloudFormation: a table it creates gets the template's TimeToLiveSpecification and
   PointInTimeRecoverySpecification, as in AWS; moto's CloudFormation drops them.
5. Cognito: confirming a sign-up in a pool that auto-verifies email marks the email verified, as
   AWS does (the code sent to that email proved it); moto only sets the status.
6. Harshness, on demand (devstack/harsh.py): a lagging index, lost responses, throttling and
   duplicated stream records, as DynamoDB shows them; off unless switched on.
7. Pauses. The process holds the table and its stream as millions of Python objects at bench
   sizes; a full garbage collection over all of them held every request up for half a second.
   Survivors of a full collection are frozen (`freeze_after_full_collections`), and given back
   to the collector when a table is deleted (`delete_table`).
8. Streams and Lambda. moto hands a table's stream to the functions mapped to it inside each
   write (in Docker, which the local stack has not) and then empties the stream, and it keeps a
   deleted mapping on the table: with a mapping, live or deleted (bin/aws/deploy, then
   bin/aws/destroy, against the local stack), every write either failed with a 500 after storing
   its item or took its record away from the stream worker. In AWS a table's writes never depend
   on its stream's readers, and each reader sees every record; here a write only records the
   change, and a mapping is configuration that nothing invokes (`send_dynamodb_items`): locally
   the stream worker feeds the stream to the Lambda.
9. Cognito's pre-sign-up trigger. moto runs no trigger (it would need Docker). Where the local
   stack names its database (LOCAL_SIGN_UP_DATABASE), a SignUp runs the sign-up Lambda's own
   handler (aws/lambdas/cruddur-post-confirmation.py) with the PreSignUp_SignUp event first and,
   as Cognito does, refuses with UserLambdaValidationException ("PreSignUp failed with error
   ...") when it raises: a taken handle stops a sign-up locally as it does in AWS.
10. Cost of reading a stream. moto writes a GetRecords answer through botocore's model of the
   output, about a millisecond per record: a second for a full page of 1,000, where DynamoDB
   Streams answers in tens of milliseconds, and the stream worker then replayed a backlog slower
   than it keeps up live. Here the same JSON is written directly (`get_records`).
11. CORS. moto's server answers CORS for any origin, so any web page a developer visits could
   call the local Cognito (AdminCreateUser) or read /moto-api/data.json, which holds passwords.
   Here only the frontend's origin (FRONTEND_URL, http://localhost:3000 by default) gets CORS
   answers, for the services (its sign-in calls Cognito), and no origin for moto's own API.

The corrections read moto's arguments by name, never by position, and `check_moto()` (called by
`install()`, and by a test) fails loudly, naming what changed, if a moto upgrade no longer has
what they rely on.
"""
from __future__ import annotations

import base64
import bisect
import copy
import gc
import inspect
import io
import json
import logging
import operator
import os
import socket
import time
import types
from pathlib import Path
import sys
import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator

import moto
import moto.dynamodb.models as ddb_models
import moto.server
from moto.awslambda.models import LambdaBackend
from moto.cognitoidp.models import CognitoIdpBackend
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from werkzeug.serving import run_simple

from devstack import harsh, moto_state
from devstack.moto import SIGN_UP_DATABASE_ENV

_dynamodb_lock = threading.RLock()
# The harshness in force (off unless LOCAL_HARSH* says otherwise); set by install().
_harsh = harsh.State(harsh.Harshness())


# Requests that change nothing kept across restarts (devstack/moto_state.py).
READS = {f"DynamoDB_20120810.{name}" for name in (
    "GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource")}


class SerializedDynamoDB:
    """WSGI middleware: DynamoDB, DynamoDB Streams and Cognito requests run one at a time (so
    that a snapshot of the state never sees one half-done), and one that may change something
    tells `on_change`."""

    def __init__(self, app: Callable, on_change: Callable[[], None] = lambda: None):
        self.app = app
        self.on_change = on_change

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(("DynamoDB", "AWSCognitoIdentityProviderService")):
            with _dynamodb_lock:
                # Read the whole response inside the lock: the work may happen while iterating.
                response = list(self.app(environ, start_response))
            if target not in READS and not target.startswith("DynamoDBStreams"):
                self.on_change()
            return response
        return self.app(environ, start_response)


class _CopyWithoutTables:
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


_moto_transact_write_items = DynamoDBBackend.transact_write_items


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
        _moto_transact_write_items(self, transact_items)
    except Exception:
        for table, (hash_key, range_key), item in reversed(saved):
            _restore(table, hash_key, range_key, item)
            _reindex(table, (hash_key, range_key), item)
        for shard, length in stream_lengths.values():
            del shard.items[length:]
        raise


_moto_cast_value = DynamoType.cast_value.fget  # type: ignore[attr-defined]


def _cast_value(self: DynamoType) -> Any:
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


class _IndexBuckets:
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


def _index_buckets(table: Table, name: str) -> _IndexBuckets | None:
    shard = table.stream_shard
    if shard is None:
        return None
    buckets = getattr(shard, "index_buckets", None)
    if buckets is None:
        buckets = shard.index_buckets = {}
    if name not in buckets:
        buckets[name] = _IndexBuckets(name, table)
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


_moto_stream_add = StreamShard.add
_moto_confirm_sign_up = CognitoIdpBackend.confirm_sign_up
_moto_sign_up = CognitoIdpBackend.sign_up
_sign_up_lambda: types.ModuleType | None = None


class UserLambdaValidationException(JsonRESTError):
    """What Cognito answers when a trigger refuses (or fails)."""

    def __init__(self, message: str):
        super().__init__("UserLambdaValidationException", message)


def sign_up(self: CognitoIdpBackend, client_id: str, username: str, password: str,
            attributes: list[dict[str, str]]) -> Any:
    if _sign_up_lambda is not None:
        named = {a["Name"]: a["Value"] for a in attributes}
        if "@" in username:  # the pool's usernames are emails (Cruddur's, and the local one)
            named.setdefault("email", username)
        event = {"version": "1", "triggerSource": "PreSignUp_SignUp", "userName": username,
                 "callerContext": {"clientId": client_id}, "request": {"userAttributes": named},
                 "response": {}}
        try:
            _sign_up_lambda.lambda_handler(event, None)
        except Exception as error:  # the trigger refused, or failed: Cognito refuses either way
            raise UserLambdaValidationException(f"PreSignUp failed with error {error}.") from None
    return _moto_sign_up(self, client_id, username, password, attributes)
_moto_table_from_cloudformation = Table.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def table_from_cloudformation(cls: type, resource_name: str, cloudformation_json: dict[str, Any],
                              account_id: str, region_name: str, **kwargs: Any) -> Table:
    table = _moto_table_from_cloudformation(cls, resource_name, cloudformation_json, account_id,
                                            region_name, **kwargs)
    properties = cloudformation_json.get("Properties", {})
    backend = ddb_models.dynamodb_backends[account_id][region_name]
    if properties.get("TimeToLiveSpecification"):
        backend.update_time_to_live(table.name, properties["TimeToLiveSpecification"])
    if properties.get("PointInTimeRecoverySpecification"):
        backend.update_continuous_backups(table.name, properties["PointInTimeRecoverySpecification"])
    return table


def confirm_sign_up(self: CognitoIdpBackend, client_id: str, username: str) -> str:
    answer = _moto_confirm_sign_up(self, client_id, username)
    for pool in self.user_pools.values():
        if client_id in pool.clients:
            user = self.admin_get_user(pool.id, username)
            if ("email" in pool.extended_config.get("AutoVerifiedAttributes", [])
                    and "email" in user.attribute_lookup):
                user.update_attributes([{"Name": "email_verified", "Value": "true"}])
    return answer


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
    _moto_stream_add(self, old, new)


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


def send_dynamodb_items(self: LambdaBackend, function_arn: str, items: list[Any],
                        source: str) -> None:
    """Correction 8: moto calls this inside each write to a table whose stream is mapped (also by
    a mapping deleted since), to invoke the function, and empties the stream when it returns
    something. Locally the stream worker is the stream's reader (bin/dev): nothing is invoked,
    and the records stay."""
    return None


def check_moto(query_signature: inspect.Signature | None = None) -> None:
    """Raise RuntimeError naming what is missing when this moto lacks what the corrections use."""
    signature = query_signature or MOTO_QUERY_SIGNATURE
    missing = [f"Table.query argument {name!r}" for name in QUERY_ARGUMENTS
               if name not in signature.parameters]
    wanted: list[tuple[object, str, str]] = [
        (Table, "all_items", "Table.all_items"), (Table, "get_item", "Table.get_item"),
        (DynamoDBBackend, "transact_write_items", "DynamoDBBackend.transact_write_items"),
        (DynamoDBBackend, "delete_table", "DynamoDBBackend.delete_table"),
        (DynamoType, "cast_value", "DynamoType.cast_value"),
        (StreamShard, "add", "StreamShard.add"),
        (LambdaBackend, "send_dynamodb_items", "LambdaBackend.send_dynamodb_items"),
        (CognitoIdpBackend, "confirm_sign_up", "CognitoIdpBackend.confirm_sign_up"),
        (CognitoIdpBackend, "sign_up", "CognitoIdpBackend.sign_up"),
        (Table, "create_from_cloudformation_json", "Table.create_from_cloudformation_json"),
        (DynamoDBBackend, "update_time_to_live", "DynamoDBBackend.update_time_to_live"),
        (DynamoDBBackend, "update_continuous_backups", "DynamoDBBackend.update_continuous_backups"),
        (CognitoIdpBackend, "admin_get_user", "CognitoIdpBackend.admin_get_user"),
        (DynamoDBStreamsHandler, "get_records", "DynamoDBStreamsHandler.get_records"),
        (DynamoDBStreamsBackend, "get_records", "DynamoDBStreamsBackend.get_records"),
    ]
    missing += [label for owner, name, label in wanted if not hasattr(owner, name)]
    if not isinstance(getattr(ddb_models, "copy", None), (types.ModuleType, _CopyWithoutTables)):
        missing.append("moto.dynamodb.models.copy (the copy module)")
    if list(inspect.signature(_moto_stream_add).parameters)[1:] != ["old", "new"]:
        missing.append("StreamShard.add(old, new)")
    if "transact_items" not in inspect.signature(_moto_transact_write_items).parameters:
        missing.append("DynamoDBBackend.transact_write_items argument 'transact_items'")
    if missing:
        raise RuntimeError("devstack/moto_server.py no longer fits this moto "
                           f"({getattr(moto, '__version__', '?')}): {', '.join(missing)} changed")


def frontend_only_cors(create_backend_app: Callable[[str], Any], origin: str) -> Callable[[str], Any]:
    """moto's app factory with CORS for `origin` only, and none on moto's own API (its state,
    passwords included) (correction 11). Every service's app gets it, as moto's global CORS
    gave it: a browser's preflight carries no X-Amz-Target, so moto may route it to any app."""
    from flask_cors import CORS

    def create(service: str) -> Any:
        app = create_backend_app(service)
        if service != "moto_api":
            CORS(app, origins=[origin])
        return app
    return create


def install(harshness: harsh.Harshness | None = None,
            keeper: moto_state.Keeper | None = None) -> None:
    global _harsh
    check_moto()
    _harsh = harsh.State(harshness if harshness is not None else harsh.from_env(),
                         os.environ.get("LOCAL_HARSH_SEED"))
    from moto.moto_server import werkzeug_app

    from lib.config import Settings

    werkzeug_app.DISABLE_GLOBAL_CORS = True  # type: ignore[attr-defined]
    factory = frontend_only_cors(werkzeug_app.create_backend_app,
                                 os.environ.get("FRONTEND_URL") or Settings().frontend_url)
    werkzeug_app.create_backend_app = factory  # type: ignore[assignment]
    moto.server.create_backend_app = factory  # type: ignore[attr-defined]  (main() takes it from here)
    StreamShard.add = stream_add  # type: ignore[method-assign]
    DynamoDBStreamsHandler.get_records = get_records  # type: ignore[method-assign,assignment]
    LambdaBackend.send_dynamodb_items = send_dynamodb_items  # type: ignore[method-assign,assignment]
    CognitoIdpBackend.confirm_sign_up = confirm_sign_up  # type: ignore[method-assign]
    database = os.environ.get(SIGN_UP_DATABASE_ENV)
    if database:
        global _sign_up_lambda
        from lib import lambda_files  # the Lambda's code, as it is deployed

        os.environ["CONNECTION_URL"] = database  # what the Lambda reads, in this process only
        _sign_up_lambda = lambda_files.load(lambda_files.LAMBDAS / "cruddur-post-confirmation.py")
        CognitoIdpBackend.sign_up = sign_up  # type: ignore[method-assign]
    Table.create_from_cloudformation_json = classmethod(table_from_cloudformation)  # type: ignore[method-assign,assignment]
    ddb_models.copy = _CopyWithoutTables()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoDBBackend.delete_table = delete_table  # type: ignore[method-assign]
    DynamoType.cast_value = property(_cast_value)  # type: ignore[assignment,method-assign]
    Table.query = query  # type: ignore[method-assign]
    on_change = keeper.changed if keeper else (lambda: None)
    moto.server.run_simple = lambda host, port, app, **kwargs: run_simple(  # type: ignore[assignment]
        host, port, harsh.HarshMiddleware(SerializedDynamoDB(app, on_change), _harsh),
        **{**kwargs, "request_handler": KeepAliveHandler})


class KeepAliveHandler(moto.server.MotoRequestHandler):
    """HTTP/1.1 with persistent connections, so that a client's connection serves request after
    request, as DynamoDB's does.

    werkzeug's handler closes every connection ("Connection: close"), and after each response it
    drains whatever the client sent meanwhile (waiting up to 10 ms for it), which on a kept
    connection would swallow the next request. Each call of a client then pays a new TCP
    connection and, in the API's gevent worker, a name lookup in gevent's thread pool. Here, when
    the body's length is known, the body is read whole before the app runs; werkzeug's drain is
    then pointed at an empty stream and a descriptor that is always at end-of-file, so it returns
    at once and the next request stays in the socket. A chunked body keeps werkzeug's behaviour
    (drain and close)."""
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # the headers and the body leave in two writes: without this, on a kept connection,
        # Nagle's algorithm holds the body until the client's delayed ACK (40 ms)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        self._keep_alive = False
        socket_file, connection = self.rfile, self.connection
        try:
            super().run_wsgi()
        finally:
            self.rfile, self.connection = socket_file, connection

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        if not environ.get("wsgi.input_terminated"):  # a length, or no body
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(length) if length > 0 else b"")
            # what werkzeug's drain will look at, for the rest of this request only
            self.rfile, self.connection = io.BytesIO(), _at_end_of_file()
            self._keep_alive = True
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if (keyword.lower() == "connection" and value.lower() == "close"
                and getattr(self, "_keep_alive", False)):
            return  # werkzeug's unconditional close; a client's own "close" still holds
        super().send_header(keyword, value)


_END_OF_FILE: list[int] = []
_END_OF_FILE_LOCK = threading.Lock()


def _at_end_of_file() -> int:
    """A descriptor that select() always finds readable and that reads nothing (one, shared by
    every connection's thread)."""
    with _END_OF_FILE_LOCK:
        if not _END_OF_FILE:
            read_end, write_end = os.pipe()
            os.close(write_end)
            _END_OF_FILE.append(read_end)
        return _END_OF_FILE[0]


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


def main(argv: list[str] | None = None) -> None:
    """moto's server, corrected; with LOCAL_MOTO_STATE set, its data kept in that file."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = os.environ.get(moto_state.STATE_ENV)
    keeper = moto_state.Keeper(Path(state), _dynamodb_lock) if state else None
    install(keeper=keeper)
    freeze_after_full_collections()
    if keeper:
        keeper.load()
        keeper.start()
    try:
        # moto's own SIGTERM and SIGINT handlers end it with SystemExit, through here
        moto.server.main(argv if argv is not None else sys.argv[1:])
    finally:
        if keeper:
            keeper.stop()  # the last changes


if __name__ == "__main__":
    main()
