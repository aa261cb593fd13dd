"""A small thread-safe, bounded cache with an optional time to live."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")
_MISSING = object()


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
        self._loading: dict[Hashable, threading.Lock] = {}

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

    def get_or_load(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        """The cached value, else `load()`'s, stored unless it is None (so that a thing created
        later is found then). Threads that miss the same key at once wait for one load instead of
        each making it: an expired entry costs one query, not one per thread."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        try:
            with key_lock:
                value = self.get(key)  # loaded by the thread we waited for
                if value is None:
                    value = load()
                    if value is not None:
                        self.put(key, value)
                return value
        finally:
            with self._lock:
                if self._loading.get(key) is key_lock:
                    del self._loading[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
