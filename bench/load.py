"""The load generator: a fixed number of operations spread over N threads, each with its own
connection (a urllib3 connection or a boto3 client), with a time cap so that no run is unbounded."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

# One operation: given its index in the run, do it; raise on failure.
Operation = Callable[[int], None]


@dataclass
class LoadResult:
    requests: int
    errors: int
    elapsed_s: float
    latencies_ms: list[float] = field(repr=False)
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    @classmethod
    def merge(cls, parts: list["LoadResult"]) -> "LoadResult":
        """Slices of one measurement taken at different times, as one."""
        return cls(requests=sum(p.requests for p in parts), errors=sum(p.errors for p in parts),
                   elapsed_s=sum(p.elapsed_s for p in parts),
                   latencies_ms=[v for p in parts for v in p.latencies_ms],
                   first_error=next((p.first_error for p in parts if p.first_error), None))

    def summary(self) -> dict:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "first_error": self.first_error,
        }


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def run_load(workers: list[Operation], total: int, max_seconds: float,
             stop: threading.Event) -> LoadResult:
    """Run `total` operations (fewer if `max_seconds` passes first) over one thread per worker.

    Operations are handed out by index from a shared counter, so the threads together do exactly
    `total` unless the time cap or `stop` ends the run early. Failed operations are counted as
    errors and left out of the latencies."""
    concurrency = len(workers)
    lock = threading.Lock()
    state = {"next": 0, "errors": 0, "first_error": None}
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    go = threading.Event()
    deadline = [0.0]

    def loop(t: int) -> None:
        while not go.wait(0.1):
            if stop.is_set():
                return
        work = workers[t]
        mine = latencies[t]
        while not stop.is_set():
            with lock:
                i = state["next"]
                if i >= total or time.perf_counter() > deadline[0]:
                    return
                state["next"] = i + 1
            started = time.perf_counter()
            try:
                work(i)
            except Exception as error:  # counted, reported, and the run goes on
                with lock:
                    state["errors"] += 1
                    if state["first_error"] is None:
                        state["first_error"] = f"{type(error).__name__}: {error}"[:300]
                continue
            mine.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=loop, args=(t,), daemon=True, name=f"load-{t}")
               for t in range(concurrency)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + max_seconds
    go.set()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # short joins keep Ctrl-C responsive
    except BaseException:
        stop.set()
        raise
    elapsed = time.perf_counter() - started
    flat = [v for per_thread in latencies for v in per_thread]
    return LoadResult(requests=len(flat), errors=state["errors"], elapsed_s=elapsed,
                      latencies_ms=flat, first_error=state["first_error"])
