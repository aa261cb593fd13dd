"""./bin/bench --scale: the event log's limits on this machine (docs/scale.md).

Every message makes live events, and every event is one row of a user's numbered log in
PostgreSQL, appended in a transaction that locks that user's head and ends with a NOTIFY
(lib/event_log.py). Two things bound that at scale, and both are measured here against the bench's
own embedded PostgreSQL, through the project's own `event_log.append`:

- appends: events per second with 1, 4 and 16 appenders racing (each one an events Lambda's
  connection), in batches as a stream delivers them: each record a message between two of 1,000
  users, making its five events (a `message` for each participant, a `conversation` for each, the
  sender's `read`);
- NOTIFY fan-out: PostgreSQL delivers each commit's notification to every listening connection
  (each API process holds one, lib/event_listener.py) and serialises committing transactions that
  notify; appends per second, and the time from commit to delivery, with 1, 4 and 16 listeners.

A woken stream then reads the log once (`event_log.after`: one query per wake, however many events
it holds): that cost is the stream's, measured by the main bench (bench/live.py).
"""
from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from typing import Any

import psycopg

from domain.live_events import NewEvent
from lib import event_log

USERS = 1000
RECORDS_PER_BATCH = 10  # a busy shard's batch (the mapping takes up to 100 without a window)
APPENDERS = (1, 4, 16)
LISTENERS = (1, 4, 16)


def _message_events(users: list[str], n: int) -> list[NewEvent]:
    """The events one message between two random users makes (domain/live_events.py's five)."""
    sender, recipient = random.sample(users, 2)
    group = f"bench-scale-{n}"
    message = {"uuid": str(uuid.uuid4()), "message": "x" * 40, "message_group_uuid": group}
    events = [NewEvent(u, "message", message, f"message:{message['uuid']}") for u in (sender, recipient)]
    events += [NewEvent(u, "conversation", {"uuid": group, "n": n}, f"conversation:{group}:{n}:{u}")
               for u in (sender, recipient)]
    events.append(NewEvent(sender, "read", {"message_group_uuid": group, "up_to": n}, f"read:{group}:{n}"))
    return events


def appends(url: str, appenders: int, seconds: float) -> dict[str, Any]:
    """Events and append transactions per second with `appenders` racing for `seconds`."""
    users = [str(uuid.uuid4()) for _ in range(USERS)]
    counts = {"events": 0, "appends": 0}
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    start = threading.Barrier(appenders)

    def appender(index: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            n = index * 10_000_000
            start.wait()
            while time.monotonic() < deadline:
                batch: list[NewEvent] = []
                for _ in range(RECORDS_PER_BATCH):
                    n += 1
                    batch += _message_events(users, n)
                began = time.perf_counter()
                event_log.append(conn, batch)
                spent = time.perf_counter() - began
                with lock:
                    counts["events"] += len(batch)
                    counts["appends"] += 1
                    latencies.append(spent)

    threads = [threading.Thread(target=appender, args=(i,)) for i in range(appenders)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - began
    return {"appenders": appenders, "events_per_s": round(counts["events"] / took),
            "appends_per_s": round(counts["appends"] / took, 1),
            "append_p50_ms": round(statistics.median(latencies) * 1000, 2),
            "append_p99_ms": round(sorted(latencies)[int(len(latencies) * 0.99)] * 1000, 2)}


def fanout(url: str, listeners: int, seconds: float) -> dict[str, Any]:
    """One appender's single-message appends per second while `listeners` connections LISTEN,
    and the time from each commit to its notification reaching every listener."""
    users = [str(uuid.uuid4()) for _ in range(USERS)]
    committed: dict[str, float] = {}
    arrivals: list[tuple[str, float]] = []
    lock = threading.Lock()
    done = threading.Event()
    ready = threading.Barrier(listeners + 1)

    def listener() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"LISTEN {event_log.CHANNEL}")
            ready.wait()
            while not done.is_set():
                for notice in conn.notifies(timeout=0.2):
                    arrived = time.perf_counter()
                    with lock:
                        arrivals.append((notice.payload, arrived))

    threads = [threading.Thread(target=listener) for _ in range(listeners)]
    for thread in threads:
        thread.start()
    appended = 0
    with psycopg.connect(url, autocommit=True) as conn:
        ready.wait()
        deadline = time.monotonic() + seconds
        began = time.monotonic()
        n = 0
        while time.monotonic() < deadline:
            n += 1
            heads = event_log.append(conn, _message_events(users, n))
            now = time.perf_counter()
            with lock:
                for user, seq in heads.items():
                    committed[f"{user}:{seq}"] = now
            appended += 1
        took = time.monotonic() - began
    time.sleep(0.5)  # the last notifications arrive
    done.set()
    for thread in threads:
        thread.join()
    # from the moment the appender had its commit back (a notice may even arrive before that)
    ordered = sorted(max(0.0, arrived - committed[payload]) for payload, arrived in arrivals
                     if payload in committed)
    delays = ordered
    return {"listeners": listeners, "appends_per_s": round(appended / took, 1),
            "notifications": len(delays),
            "delivery_p50_ms": round(statistics.median(ordered) * 1000, 2) if ordered else None,
            "delivery_p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2) if ordered else None}


def measure(url: str, seconds: float = 10.0) -> dict[str, Any]:
    """The event log's figures for docs/scale.md."""
    return {"records_per_batch": RECORDS_PER_BATCH, "events_per_record": 5, "seconds": seconds,
            "appends": [appends(url, n, seconds) for n in APPENDERS],
            "fanout": [fanout(url, n, seconds) for n in LISTENERS]}
