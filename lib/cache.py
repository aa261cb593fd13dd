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

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
