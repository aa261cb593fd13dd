"""moto's server as the local stack runs it, corrected to behave as DynamoDB does under load.

`python -m lib.moto_server -H 127.0.0.1 -p PORT` takes moto.server's own arguments. Two
corrections to moto's DynamoDB, both local-only (nothing here runs against AWS):

1. Concurrency. moto's server is threaded, but its DynamoDB backend is not thread-safe: a
   cancelled TransactWriteItems restores a snapshot of the whole table, wiping out writes that
   other threads made meanwhile. DynamoDB never loses an acknowledged write, so DynamoDB and
   DynamoDB Streams requests are applied one at a time here (moto is bound by the GIL anyway).
2. Cost. That snapshot is a deep copy of the whole table on every transaction: 4 s per
   transaction at 10,000 items, where DynamoDB takes milliseconds. Here a transaction saves and,
   if cancelled, restores only the items it touches (and the stream records it added).
"""
from __future__ import annotations

import copy
import sys
import threading
from typing import Any, Callable, Iterable

import moto.dynamodb.models as ddb_models
import moto.server
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from werkzeug.serving import run_simple

_dynamodb_lock = threading.RLock()


class SerializedDynamoDB:
    """WSGI middleware: DynamoDB and DynamoDB Streams requests run one at a time."""

    def __init__(self, app: Callable):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with _dynamodb_lock:
                # Read the whole response inside the lock: the work may happen while iterating.
                return list(self.app(environ, start_response))
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
        for shard, length in stream_lengths.values():
            del shard.items[length:]
        raise


def install() -> None:
    ddb_models.copy = _CopyWithoutTables()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    moto.server.run_simple = lambda host, port, app, **kwargs: run_simple(  # type: ignore[assignment]
        host, port, SerializedDynamoDB(app), **kwargs)


def main(argv: list[str] | None = None) -> None:
    install()
    moto.server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
