"""An in-memory twin of lib.ddb.Ddb, for the fast tests of the conversation store and the stream.

tests/stack/test_table_contract.py runs the same tests against this and against moto, so it cannot
drift from what the real helper does. It can also be made as unkind as AWS, on purpose and one
step at a time, which a test of the store's write order needs:
- `lose_responses(n)`: the next n writes land, but their answer is lost, and the caller's retry
  (what the SDK does) runs the same write again and gives its answer;
- `fail_writes(n, when)`: the next n writes (that `when` picks) fail before landing, as a
  throttled or cut request does (StoreUnavailable);
- `before_write(fn)`: fn runs once, just before the next write lands (another process's write
  in between);
- `freeze_index()` / `catch_up_index()`: the GSI shows the table as it was when frozen;
- `stream_records()`: what the table's stream (NEW_IMAGE) has delivered since the last call.
`calls` counts the operations, by name.
"""
from __future__ import annotations

import copy
import threading
from collections import Counter
from typing import Any, Callable, Iterable, Iterator, Mapping

from domain.times import epoch_now
from lib.ddb import KeyTaken, Page, StoreUnavailable, serialize

Key = tuple[str, str]


class MemoryTable:
    def __init__(self, table: str = "memory", exists: bool = True) -> None:
        self.table = table
        self.items: dict[Key, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.ttl_attribute: str | None = None
        self.exists = exists
        self.definition: dict[str, Any] = {}
        self._index: dict[Key, dict[str, Any]] | None = None  # a frozen copy, else None
        self._stream: list[dict[str, Any]] = []
        self._sequence = 0
        self._lost = 0
        self._failing: list[Callable[[str, Mapping[str, Any]], bool]] = []
        self._before: list[Callable[[], None]] = []
        self._lock = threading.RLock()

    # -- unkindness ------------------------------------------------------------------------------
    def lose_responses(self, count: int = 1) -> None:
        self._lost += count

    def fail_writes(self, count: int = 1,
                    when: Callable[[str, Mapping[str, Any]], bool] = lambda op, item: True) -> None:
        self._failing += [when] * count

    def before_write(self, action: Callable[[], None]) -> None:
        self._before.append(action)

    def freeze_index(self) -> None:
        self._index = copy.deepcopy(self.items)

    def catch_up_index(self) -> None:
        self._index = None

    def stream_records(self) -> list[dict[str, Any]]:
        records, self._stream = self._stream, []
        return records

    def _write(self, operation: str, item: Mapping[str, Any], apply: Callable[[], Any]) -> Any:
        self.calls[operation] += 1
        for when in list(self._failing):
            if when(operation, item):
                self._failing.remove(when)
                raise StoreUnavailable(reason=f"{operation} failed (injected)")
        if self._before:
            self._before.pop(0)()
        with self._lock:
            if self._lost:
                self._lost -= 1
                try:
                    apply()  # lands; its answer is lost, and the SDK sends it again
                except KeyTaken:
                    pass
            return apply()

    def _record(self, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._sequence += 1
        self._stream.append({
            "eventName": "MODIFY" if old is not None else "INSERT",
            "dynamodb": {"NewImage": serialize(new), "SequenceNumber": str(self._sequence).zfill(21)}})

    # -- the table ------------------------------------------------------------------------------
    def table_exists(self) -> bool:
        return self.exists

    def table_active(self) -> bool:
        return self.exists

    def create_table(self, definition: Mapping[str, Any]) -> bool:
        if self.exists:
            return False
        self.exists, self.definition = True, copy.deepcopy(dict(definition))
        return True

    def describe(self) -> dict[str, Any] | None:
        """What DescribeTable says of the table as it was created and updated (TableName, key
        schema, indexes, stream), or None."""
        return copy.deepcopy({**self.definition, "TableName": self.table}) if self.exists else None

    def update_table(self, **changes: Any) -> None:
        self.calls["update_table"] += 1
        for update in changes.get("GlobalSecondaryIndexUpdates", []):
            self.definition.setdefault("GlobalSecondaryIndexes", []).append(copy.deepcopy(update["Create"]))
        if "StreamSpecification" in changes:
            self.definition["StreamSpecification"] = dict(changes["StreamSpecification"])

    def is_empty(self) -> bool:
        return not self.items

    def ttl(self) -> tuple[str, str | None]:
        return ("ENABLED", self.ttl_attribute) if self.ttl_attribute else ("DISABLED", None)

    def ensure_ttl(self, attribute: str) -> str:
        self.ttl_attribute = self.ttl_attribute or attribute
        return "ENABLED"

    def delete_table(self) -> bool:
        existed, self.exists = self.exists, False
        self.items.clear()
        return existed

    # -- reads ----------------------------------------------------------------------------------
    def get(self, key: Mapping[str, str], consistent: bool = True,
            attributes: Iterable[str] | None = None) -> dict[str, Any] | None:
        self.calls["get_item"] += 1
        item = self.items.get((key["pk"], key["sk"]))
        return _project(item, attributes) if item is not None else None

    def _matching(self, pk: str, newest_first: bool, after_sk: str | None, sk_from: str | None,
                  sk_to: str | None) -> list[dict[str, Any]]:
        found = sorted((i for (p, _), i in self.items.items() if p == pk), key=lambda i: i["sk"],
                       reverse=newest_first)
        found = [i for i in found if (sk_from is None or i["sk"] >= sk_from)
                 and (sk_to is None or i["sk"] <= sk_to)]
        if after_sk is not None:
            found = [i for i in found if (i["sk"] < after_sk if newest_first else i["sk"] > after_sk)]
        return found

    def query(self, pk: str, *, limit: int | None = None, newest_first: bool = False,
              after_sk: str | None = None, sk_from: str | None = None, sk_to: str | None = None,
              consistent: bool = False, attributes: Iterable[str] | None = None,
              where: Mapping[str, Any] | None = None, **extra: Any) -> Page:
        self.calls["query"] += 1
        found = self._matching(pk, newest_first, after_sk, sk_from, sk_to)
        evaluated = found[:limit] if limit is not None else found
        more = len(found) > len(evaluated)
        # a filter drops items after Limit has counted them, as DynamoDB's does
        kept = [_project(i, attributes) for i in evaluated if _holds(i, where)]
        return Page(kept, evaluated[-1]["sk"] if more and evaluated else None)

    def query_items(self, pk: str, *, newest_first: bool = False, sk_from: str | None = None,
                    sk_to: str | None = None, consistent: bool = False,
                    attributes: Iterable[str] | None = None,
                    where: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        self.calls["query"] += 1
        for item in self._matching(pk, newest_first, None, sk_from, sk_to):
            if _holds(item, where):
                yield _project(item, attributes)

    def query_index(self, index: str, attribute: str, value: str) -> list[dict[str, Any]]:
        self.calls["query"] += 1
        source = self._index if self._index is not None else self.items
        return [copy.deepcopy(i) for i in sorted(source.values(), key=lambda i: i["sk"])
                if i.get(attribute) == value]

    def scan_all(self, on_page: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        self.calls["scan"] += 1
        items = [copy.deepcopy(i) for i in self.items.values()]
        if on_page:
            on_page(len(items))
        yield from items

    # -- writes ---------------------------------------------------------------------------------
    def _store(self, item: Mapping[str, Any]) -> None:
        new = copy.deepcopy(dict(item))
        key = (new["pk"], new["sk"])
        old = self.items.get(key)
        self.items[key] = new
        self._record(new, old)

    def put(self, item: Mapping[str, Any]) -> None:
        self._write("put_item", item, lambda: self._store(item))

    def put_new(self, item: Mapping[str, Any], expires: str | None = None) -> None:
        def apply() -> None:
            held = self.items.get((item["pk"], item["sk"]))
            if held is not None and not (expires and expires in held and int(held[expires]) < epoch_now()):
                raise KeyTaken(frozenset({0}), {0: copy.deepcopy(held)})
            self._store(item)
        self._write("put_item", item, apply)

    def update_if(self, key: Mapping[str, str], values: Mapping[str, Any],
                  expect: Mapping[str, Any]) -> None:
        def apply() -> None:
            held = self.items.get((key["pk"], key["sk"]))
            if held is None or not _still(held, expect):
                raise KeyTaken(frozenset({0}), {0: copy.deepcopy(held)} if held else None)
            self._store(_changed(held, values))
        self._write("update_item", key, apply)

    def update_if_newer(self, key: Mapping[str, str], values: Mapping[str, Any], expect: Mapping[str, Any],
                        version: str) -> bool:
        def apply() -> bool:
            held = self.items.get((key["pk"], key["sk"]))
            if held is None or not _still(held, expect) or (
                    version in held and not held[version] < values[version]):
                return False
            self._store(_changed(held, values))
            return True
        return self._write("update_item", key, apply)

    def delete_if(self, key: Mapping[str, str], expect: Mapping[str, Any]) -> bool:
        def apply() -> bool:
            held = self.items.get((key["pk"], key["sk"]))
            if held is None or not _still(held, expect):
                return False
            del self.items[(key["pk"], key["sk"])]
            return True
        return self._write("delete_item", key, apply)

    def batch_write(self, items: Iterable[Mapping[str, Any]],
                    on_progress: Callable[[int], None] | None = None, max_backoff: float = 2.0) -> int:
        items = list(items)
        for item in items:
            self._store(item)
        if on_progress and items:
            on_progress(len(items))
        self.calls["batch_write_item"] += -(-len(items) // 25)
        return -(-len(items) // 25)

    def batch_delete(self, keys: Iterable[Mapping[str, Any]],
                     on_progress: Callable[[int], None] | None = None, max_backoff: float = 2.0) -> int:
        keys = list(keys)
        for key in keys:
            self.items.pop((key["pk"], key["sk"]), None)
        self.calls["batch_write_item"] += -(-len(keys) // 25)
        return -(-len(keys) // 25)


def _project(item: Mapping[str, Any], attributes: Iterable[str] | None) -> dict[str, Any]:
    copied = copy.deepcopy(dict(item))
    return {k: v for k, v in copied.items() if k in set(attributes)} if attributes else copied


def _holds(item: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    return _still(item, where or {})


def _changed(held: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """`held` with `values` set, and the attributes whose value is None removed."""
    removed = {a for a, v in values.items() if v is None}
    item = {**held, **copy.deepcopy({a: v for a, v in values.items() if v is not None})}
    return {a: v for a, v in item.items() if a not in removed}


def _still(item: Mapping[str, Any], expect: Mapping[str, Any]) -> bool:
    return all((a not in item) if v is None else item.get(a) == v for a, v in expect.items())
