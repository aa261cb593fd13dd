"""Process-wide counters of the calls that cost something: DynamoDB calls, PostgreSQL queries,
JWKS fetches, and the process's CPU time. Read by the benchmark through GET /api/_metrics when
METRICS_ENABLED=1."""
from __future__ import annotations

import resource
import threading
from collections import Counter

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def count(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def snapshot() -> dict[str, int]:
    """The counters, and `cpu_us`: the CPU time (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with _lock:
        return {**_counts, "cpu_us": round((usage.ru_utime + usage.ru_stime) * 1e6)}
