"""A small thread-safe, bounded cache with an optional time to live."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, TypeVar

V = TypeVar("V")
_MISSING = object()


class _Load:
    """One load under way, and its outcome for the threads waiting on it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class Cache(Generic[V]):
    """Least-recently-used eviction past `max_size`; entries expire after `ttl` seconds (never
    when ttl is None)."""

    def __init__(self, max_size: int = 10_000, ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.max_size = max_size
        self.ttl = ttl
        self._clock = clock
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, _Load] = {}

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            entry = self._items.get(key, _MISSING)
            if entry is _MISSING:
                return None
            stored_at, value = entry  # type: ignore[misc]
            if self.ttl is not None and self._clock() - stored_at > self.ttl:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._items[key] = (self._clock(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)

    def pop(self, key: Hashable) -> None:
        """Forget `key` (nothing when it is not there)."""
        with self._lock:
            self._items.pop(key, None)

    def get_or_load(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        """The cached value, else `load()`'s, stored unless it is None (so that a thing created
        later is found then). Threads that miss the same key at once share one load, and its
        outcome: an expired entry costs one query, not one per thread, and when the load fails
        (a database down) they all fail together instead of each waiting its turn to time out."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            pending = self._loading.get(key)
            leader = pending is None
            if leader:
                pending = self._loading[key] = _Load()
        assert pending is not None
        if not leader:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            return pending.value
        try:
            value = self.get(key)  # a load that ended just before ours began
            if value is None:
                value = load()
                if value is not None:
                    self.put(key, value)
            pending.value = value
            return value
        except BaseException as error:  # whatever stopped the load stops its waiters too
            pending.error = error
            raise
        finally:
            with self._lock:
                del self._loading[key]
            pending.done.set()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
