"""lib/cache.py: the bounded cache behind the caller and membership lookups."""
from __future__ import annotations

import threading
from typing import Callable

import pytest

from lib.cache import Cache



class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_least_recently_used_entry_goes_first():
    cache: Cache[int] = Cache(max_size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)


def test_entries_expire_after_ttl():
    clock = Clock()
    cache: Cache[str] = Cache(ttl=60, clock=clock)
    cache.put("sub", "user")
    clock.now = 60
    assert cache.get("sub") == "user"
    clock.now = 60.5
    assert cache.get("sub") is None


def test_get_or_load_loads_once_then_serves_from_cache():
    cache: Cache[str] = Cache()
    calls: list[str] = []

    def load() -> str:
        calls.append("load")
        return "value"

    assert cache.get_or_load("k", load) == "value"
    assert cache.get_or_load("k", load) == "value"
    assert calls == ["load"]


def test_get_or_load_does_not_keep_none():
    cache: Cache[str] = Cache()
    answers = iter([None, "created later"])
    assert cache.get_or_load("k", lambda: next(answers)) is None
    assert cache.get_or_load("k", lambda: next(answers)) == "created later"


def test_a_failed_load_is_not_cached_and_does_not_block_the_next():
    cache: Cache[str] = Cache()

    def fail() -> str:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        cache.get_or_load("k", fail)
    assert cache.get_or_load("k", lambda: "back") == "back"


def together(count: int, call: Callable[[], object], release: threading.Event) -> list[object]:
    """`call()` from `count` threads at once; `release` is set once they have all had time to
    reach it. Each thread's result, or the exception it raised."""
    threads_in = threading.Barrier(count)
    outcomes: list[object] = []

    def worker() -> None:
        threads_in.wait(5)
        try:
            outcomes.append(call())
        except Exception as error:
            outcomes.append(error)

    workers = [threading.Thread(target=worker) for _ in range(count)]
    for thread in workers:
        thread.start()
    threading.Timer(0.2, release.set).start()
    for thread in workers:
        thread.join(10)
    return outcomes


def test_threads_missing_the_same_key_share_one_load():
    cache: Cache[str] = Cache()
    release = threading.Event()
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        release.wait(5)  # the other threads arrive while this load is under way
        return "user"

    assert together(8, lambda: cache.get_or_load("sub", load), release) == ["user"] * 8
    assert len(calls) == 1


def test_threads_waiting_on_a_failed_load_fail_with_it_instead_of_each_loading():
    # PostgreSQL down: waiting threads must not queue up one timeout each
    cache: Cache[str] = Cache()
    release = threading.Event()
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        release.wait(5)
        raise ConnectionError("database down")

    outcomes = together(6, lambda: cache.get_or_load("sub", load), release)
    assert len(outcomes) == 6 and all(isinstance(o, ConnectionError) for o in outcomes)
    assert len(calls) == 1
    # the next request tries again
    assert cache.get_or_load("sub", lambda: "back") == "back"


def test_different_keys_load_independently():
    cache: Cache[str] = Cache()
    first_loading = threading.Event()
    release = threading.Event()

    def slow() -> str:
        first_loading.set()
        release.wait(5)
        return "slow"

    thread = threading.Thread(target=lambda: cache.get_or_load("a", slow))
    thread.start()
    assert first_loading.wait(5)
    # "a" is still loading; "b" does not wait for it
    assert cache.get_or_load("b", lambda: "fast") == "fast"
    release.set()
    thread.join(5)
    assert cache.get("a") == "slow"
