"""Process-wide counters of the calls that cost something: DynamoDB calls, PostgreSQL queries,
JWKS fetches. Read by the benchmark through GET /api/_metrics when METRICS_ENABLED=1."""
from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def count(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)
