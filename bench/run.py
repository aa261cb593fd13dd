"""./bin/bench [--quick] [--out PATH] [--bootcamp DIR] | ./bin/bench --scale [--out PATH]

Starts a local stack of its own (embedded PostgreSQL in a temporary directory, moto, the API under
gunicorn as ./bin/dev runs it), loads a data set large enough to matter, then measures, for the
four access patterns:

  A  GET  /api/messages/<group of 10,000 messages>     store: Query MSG#<g>, newest first, Limit 21
  B  GET  /api/message_groups (user with 1,000 groups) store: Query GRP#<u>, newest first, Limit 21
  C  POST /api/messages {message, handle}  (existing pair)     store: PutItem, attribute_not_exists
  D  POST /api/messages {message, message_group_uuid}          store: PutItem, attribute_not_exists

requests/s, p50 and p99 through the server at concurrency 1 and 8, the same DynamoDB operation
issued directly with boto3 from as many threads against the same moto, their ratio, and the
DynamoDB calls, PostgreSQL queries and JWKS fetches per request (deltas of GET /api/_metrics over
the measured requests, after a warm-up), the server's CPU per request (its worker's user + system
time over them) beside the CPU of the bare boto3 call (the calling thread's), and, in the same
slices, the same store call through bench/floor_app.py (a Flask route under the same gunicorn that
makes only that call, with the API's client): what any Flask API reaches here. With --bootcamp DIR,
the bootcamp's week-5 backend is served beside it (bench/bootcamp.py) and measured in the same
slices on the same requests: its requests/s and CPU per request. Then: the stream
Lambda's calls for a burst of 100 messages into one group, the stream worker's lag (how long a
conversation list shows an older message) after a burst on a fresh stack and on a restarted one
with a backlog (bench/stream_lag.py), live events (bench/live.py: post-to-event latency in the
same process and across processes, memory per idle stream, pattern B beside 1,000 idle streams,
what an idle connected user costs), DynamoDB capacity units per operation
end to end (bench/capacity.py), the calls to seed 1,000 messages, and how first-page latency of A
and B grows from a small to a large group / user.

With --scale, only the event log's limits (bench/scale.py, docs/scale.md), to bench/scale.json.

Prints a table and writes the same figures to bench/last.json (or --out). Everything it started is
stopped on the way out, also on Ctrl-C or SIGTERM. Talks to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

import urllib3

from domain import times
from lib import aws, metrics
from lib import ddb
from lib.conversations import layout, table_setup
from devstack import sigterm_as_keyboard_interrupt
from lib.config import ROOT, Settings
from services.names import NAMES_SECONDS
from bench import data as bench_data
from bench import capacity, floor_app, live, report, scale, stream, stream_lag
from bench.bootcamp import Bootcamp
from bench.data import BIG, DataSet, handle
from bench.load import LoadResult, Operation, run_load
from bench.stack import WEB_WORKERS, BenchStack

log = logging.getLogger("bench")
DEFAULT_OUT = ROOT / "bench" / "last.json"
SCALE_OUT = ROOT / "bench" / "scale.json"
# A to D, and U: the unread summary (GET /api/message_groups/unread) of the small user's (about ten
# conversations: all of a user's rows in one Query, and the big user's 1,000 take moto most of a second)
PATTERNS = ("A", "B", "C", "D", "U")
SUMMARY_READER = handle(2)
CONCURRENCY = (1, 8)
API_TIMEOUT = 60  # seconds; moto's Query takes seconds at concurrency 8 on the full data set
SLICES = 3  # API and store alternate this many times per row
GROWTH_LIMIT = 10  # the small group has ten messages: compare pages of ten
CAPACITY_USERS = 24  # one user, and 23 partners: a page of 20 conversations and then some
LAG_USERS = 30  # in pairs: 15 conversations, each sent a share of the burst


@dataclass(frozen=True)
class Plan:
    mode: str
    sizes: bench_data.Sizes
    requests: int          # measured operations per run (API and store alike) ...
    max_seconds: float     # ... unless a run reaches this first (moto's Query is slow, see docs/performance.md)
    warmup_seconds: float  # cap of one warm-up
    growth_requests: int   # requests per growth case (concurrency 1)
    stream_messages: int
    seed_messages: int
    lag_burst: int         # messages sent at once, for the stream worker's lag
    lag_backlog: int       # messages written while the worker is stopped
    live_messages: int     # messages timed from POST to event
    idle_streams: int      # live-event streams held open on one worker beside pattern B
    idle_seconds: float    # how long they sit idle while the server's calls are counted
    hostile_attempts: int  # a second user's attempts at more streams, refused, beside pattern B


# growth: 150 requests per case (about 1 s each): with 40, one slow stretch of the machine moved
# a p50 enough to swing the large/small ratio from 1.2 to 1.6
FULL = Plan("full", bench_data.FULL, requests=1000, max_seconds=30, warmup_seconds=120,
            growth_requests=150, stream_messages=100, seed_messages=1000, lag_burst=300,
            lag_backlog=3000, live_messages=100, idle_streams=1000, idle_seconds=60, hostile_attempts=2000)
QUICK = Plan("quick", bench_data.QUICK, requests=40, max_seconds=2, warmup_seconds=30,
             growth_requests=6, stream_messages=100, seed_messages=1000, lag_burst=60,
             lag_backlog=300, live_messages=20, idle_streams=200, idle_seconds=5, hostile_attempts=100)
_T0 = time.monotonic()


def say(message: str) -> None:
    print(f"bench [{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


# -- operations ----------------------------------------------------------------------------------
class Client:
    """One load thread's keep-alive connection to a server. urllib3, which requests uses
    underneath, without requests' own per-request work (cookies, hooks, proxy settings looked up
    in the environment): that costs about 0.5 ms of CPU per request on a 2-CPU machine, CPU the
    measured server shares, where the store's side is a boto3 client on urllib3 too."""

    def __init__(self, base_url: str) -> None:
        url = urllib3.util.parse_url(base_url)
        self.pool = urllib3.HTTPConnectionPool(url.host, url.port, maxsize=1, retries=False,
                                               timeout=API_TIMEOUT)

    def get(self, path: str, headers: dict[str, str] | None = None) -> None:
        _check(self.pool.request("GET", path, headers=headers))

    def post(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        _check(self.pool.request("POST", path, headers={**headers, **JSON}, body=json.dumps(body)))

    def send(self, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None = None) -> Any:
        """Any request; its JSON answer."""
        response = self.pool.request(method, path, headers={**headers, **JSON},
                                     body=json.dumps(body) if body is not None else None)
        _check(response)
        return json.loads(response.data)


JSON = {"Content-Type": "application/json"}


def _check(response: urllib3.BaseHTTPResponse) -> None:
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.data[:200]!r}")


def big_group_reader(thread: int) -> str:
    """Pattern A: both participants of the big group read it, a thread each."""
    return (BIG, handle(1))[thread % 2]


def cache_rereads_allowed(pattern: str, callers: int, window: float, user_cache_seconds: float) -> int:
    """The PostgreSQL queries `window` seconds of a pattern's requests may make although no request
    of it reads PostgreSQL: the server caches each caller's user for USER_CACHE_SECONDS and the
    names a page shows (A, B) for NAMES_SECONDS, so each caller may be read again once per expiry,
    and the page's names once per expiry (threads that miss the same entry share one read)."""
    names = int(window // NAMES_SECONDS) + 1 if pattern in ("A", "B") else 0
    return callers * (int(window // user_cache_seconds) + 1) + names


class Ops:
    """Builds one operation per thread for a pattern: through the API, straight to the store, or
    through the floor app."""

    def __init__(self, settings: Settings, url: str, ds: DataSet, tokens: dict[str, str],
                 floor_url: str | None = None):
        self.settings = settings
        self.url = url
        self.floor_url = floor_url
        self.ds = ds
        self.auth = {h: {"Authorization": f"Bearer {t}"} for h, t in tokens.items()}
        # CPU seconds spent in the direct boto3 calls (the calling thread's own), and their count
        self.store_cpu = [0.0, 0]
        self._cpu_lock = threading.Lock()

    def _timed(self, call: Callable[[], Any]) -> None:
        """Make a store call, adding the CPU time its thread spent in it to `store_cpu`."""
        start = time.thread_time()
        call()
        spent = time.thread_time() - start
        with self._cpu_lock:
            self.store_cpu[0] += spent
            self.store_cpu[1] += 1

    def api(self, pattern: str, thread: int) -> Operation:
        client = Client(self.url)
        ds, auth = self.ds, self.auth
        senders = ds.senders
        if pattern == "A":
            headers = auth[big_group_reader(thread)]
            path = f"/api/messages/{ds.big_group}"
            return lambda i: client.get(path, headers)
        if pattern == "B":
            headers = auth[BIG]
            return lambda i: client.get("/api/message_groups", headers)
        if pattern == "U":
            headers = auth[SUMMARY_READER]
            return lambda i: client.get("/api/message_groups/unread", headers)
        if pattern == "C":
            def op(i: int) -> None:
                sender = senders[i % len(senders)]
                client.post("/api/messages", auth[sender], {"message": f"bench C {i}", "handle": BIG})
            return op
        if pattern == "D":
            groups = {s: ds.group_with_big(s) for s in senders}

            def op(i: int) -> None:
                sender = senders[i % len(senders)]
                client.post("/api/messages", auth[sender],
                            {"message": f"bench D {i}", "message_group_uuid": groups[sender]})
            return op
        raise ValueError(pattern)

    def callers(self, pattern: str, concurrency: int) -> set[str]:
        if pattern == "A":
            return {big_group_reader(t) for t in range(concurrency)}
        if pattern == "B":
            return {BIG}
        if pattern == "U":
            return {SUMMARY_READER}
        return set(self.ds.senders)

    def store(self, pattern: str, thread: int) -> Operation:
        client = bare_client(self.settings)
        table = self.settings.ddb_table
        if pattern in ("A", "B"):
            query = floor_app.latest_query(table, self.latest_pk(pattern))
            return lambda i: self._timed(lambda: client.query(**query))
        if pattern == "U":
            summary = floor_app.summary_query(table, self.latest_pk(pattern))
            return lambda i: self._timed(lambda: client.query(**summary))
        if pattern in ("C", "D"):
            item = self.wire_message(pattern)

            def op(i: int) -> None:
                put = floor_app.put_new(table, item(i))
                self._timed(lambda: client.put_item(**put))
            return op
        raise ValueError(pattern)

    def floor(self, pattern: str, thread: int) -> Operation:
        """The same store call through bench/floor_app.py: a Flask route that makes only it."""
        assert self.floor_url is not None
        client = Client(self.floor_url)
        if pattern in ("A", "B"):
            path = "/latest?" + urlencode({"pk": self.latest_pk(pattern)})
            return lambda i: client.get(path)
        if pattern == "U":
            path = "/summary?" + urlencode({"pk": self.latest_pk(pattern)})
            return lambda i: client.get(path)
        if pattern in ("C", "D"):
            item = self.wire_message(pattern)
            return lambda i: client.post("/put", {}, item(i))
        raise ValueError(pattern)

    def latest_pk(self, pattern: str) -> str:
        """The partition A, B or U reads: the big group's messages, the big user's groups, the
        small user's groups."""
        ds = self.ds
        if pattern == "U":
            return layout.group_pk(ds.users[SUMMARY_READER]["uuid"])
        return layout.message_pk(ds.big_group) if pattern == "A" else layout.group_pk(ds.users[BIG]["uuid"])

    def wire_message(self, pattern: str) -> Callable[[int], dict[str, Any]]:
        """C and D at the store: the i-th operation's message, as DynamoDB's JSON, from the
        senders in turn into their group with the big user (as the API's requests)."""
        ds = self.ds
        groups = {s: ds.group_with_big(s) for s in ds.senders}

        def item(i: int) -> dict[str, Any]:
            sender = ds.senders[i % len(ds.senders)]
            return ddb.serialize(layout.message_item(
                groups[sender], ds.users[sender], f"bench store {pattern} {i}", times.now_iso()))
        return item


def bare_client(settings: Settings) -> Any:
    """A DynamoDB client as boto3 makes it by default (the yardstick: "boto3's own" CPU), at the
    local store, its requests counted for the run's figures."""
    import boto3

    client = boto3.session.Session().client(
        "dynamodb", region_name=settings.aws_region, endpoint_url=settings.endpoint_for("dynamodb"),
        **{k.lower(): v for k, v in aws.local_credentials({}).items()})
    client.meta.events.register("before-send", lambda **_: metrics.count("dynamodb_requests"))
    return client


# -- measuring -----------------------------------------------------------------------------------
def deltas(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(before) | set(after))}


def per_request(delta: dict[str, int], name: str, result: LoadResult) -> float | None:
    """A counter's delta per request sent (failed requests cost calls too)."""
    sent = result.requests + result.errors
    return round(delta.get(name, 0) / sent, 4) if sent else None


class Bench:
    def __init__(self, plan: Plan, stack: BenchStack, stop: threading.Event,
                 bootcamp: tuple[Bootcamp, "Ops"] | None = None):
        self.plan = plan
        self.stack = stack
        self.stop = stop
        self.bootcamp = bootcamp  # the week-5 backend and the same operations sent to it

    def warm(self, workers: list[Operation], warmup: int) -> None:
        if warmup:
            result = run_load(workers, warmup, self.plan.warmup_seconds, self.stop)
            if result.errors:
                say(f"warm-up: {result.errors} errors, first: {result.first_error}")

    def counted(self, make: Callable[[int], Operation], concurrency: int, total: int,
                warmup: int) -> tuple[LoadResult, dict[str, int]]:
        """A measured API run and the server's counter deltas over exactly its requests."""
        workers = [make(t) for t in range(concurrency)]
        self.warm(workers, warmup)
        before = self.stack.metrics()
        result = run_load(workers, total, self.plan.max_seconds, self.stop)
        after = self.stack.metrics()
        return result, deltas(before, after)

    def row(self, ops: Ops, pattern: str, concurrency: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """API and store, measured in alternating slices so that a change in the machine's load
        during the measurement affects both alike."""
        # Steady state: the JWKS is fetched, the callers' users and the groups' participants are
        # cached, every connection is open. C and D cycle through the senders, so each is warmed.
        warmup = 2 * concurrency
        if pattern in ("C", "D"):
            warmup += len(ops.ds.senders)
        if pattern == "C":
            # A pair's conversation is known to a server once anything of it went through; here a
            # message into it (pattern D). Otherwise the first C of each pair would find out with
            # a refused put of the group's header.
            self.warm([ops.api("D", 0)], len(ops.ds.senders))
        api_workers = [ops.api(pattern, t) for t in range(concurrency)]
        store_workers = [ops.store(pattern, t) for t in range(concurrency)]
        floor_workers = [ops.floor(pattern, t) for t in range(concurrency)]
        self.warm(api_workers, warmup)
        self.warm(store_workers, warmup)
        self.warm(floor_workers, warmup)
        old_workers: list[Operation] = []
        if self.bootcamp and pattern in report.BOOTCAMP_PATTERNS:
            old_workers = [self.bootcamp[1].api(pattern, t) for t in range(concurrency)]
            self.warm(old_workers, warmup)
        per_slice = max(1, self.plan.requests // SLICES)
        seconds = self.plan.max_seconds / SLICES
        api_parts, store_parts, floor_parts, old_parts = [], [], [], []
        store_requests = -metrics.snapshot().get("dynamodb_requests", 0)
        ops.store_cpu = [0.0, 0]
        before = self.stack.metrics()
        old_cpu = self.bootcamp[0].cpu_seconds() if self.bootcamp else 0.0
        floor_cpu = self.stack.floor_cpu_seconds()
        window = time.monotonic()
        for _ in range(SLICES):
            api_parts.append(run_load(api_workers, per_slice, seconds, self.stop))
            store_parts.append(run_load(store_workers, per_slice, seconds, self.stop))
            floor_parts.append(run_load(floor_workers, per_slice, seconds, self.stop))
            if old_workers:
                old_parts.append(run_load(old_workers, per_slice, seconds, self.stop))
        after = self.stack.metrics()  # the other slices do not touch the server
        floor_cpu = self.stack.floor_cpu_seconds() - floor_cpu  # nor the floor app
        if self.bootcamp:
            old_cpu = self.bootcamp[0].cpu_seconds() - old_cpu
        window = time.monotonic() - window
        store_requests += metrics.snapshot().get("dynamodb_requests", 0)
        api, store = LoadResult.merge(api_parts), LoadResult.merge(store_parts)
        floor = LoadResult.merge(floor_parts)
        delta = deltas(before, after)
        for what, result in (("api", api), ("store", store), ("floor app", floor)):
            if result.errors:
                say(f"{pattern} x{concurrency} {what}: {result.errors} errors, first: {result.first_error}")
        # CPU per request of the server (its one worker, idle during the store slices) and of
        # the same boto3 call made directly
        server_cpu = delta.get("cpu_us", 0) / 1000 / max(1, api.requests + api.errors)
        store_cpu = ops.store_cpu[0] * 1000 / max(1, ops.store_cpu[1])
        floor_ms = floor_cpu * 1000 / max(1, floor.requests + floor.errors)
        row = {
            "pattern": pattern,
            "concurrency": concurrency,
            "api_rps": round(api.rps, 1),
            "store_rps": round(store.rps, 1),
            "ratio": round(api.rps / store.rps, 3) if store.rps else None,
            "p50_ms": round(api.percentile(50), 2),
            "p99_ms": round(api.percentile(99), 2),
            "ddb_calls_per_request": per_request(delta, "dynamodb_calls", api),
            "pg_queries_per_request": per_request(delta, "pg_queries", api),
            "jwks_fetches_per_request": per_request(delta, "jwks_fetches", api),
            "server_cpu_ms": round(server_cpu, 3),
            "boto3_cpu_ms": round(store_cpu, 3),
            "cpu_over_boto3_ms": round(server_cpu - store_cpu, 3),
            # bench/floor_app.py: a Flask route under the same gunicorn that makes only the store
            # call, with the API's client; its ratio bounds the API's on this machine
            "floor_rps": round(floor.rps, 1),
            "floor_ratio": round(floor.rps / store.rps, 3) if store.rps else None,
            # what the app's own work costs: its CPU per request over the floor app's (issue 37)
            "floor_cpu_ms": round(floor_ms, 3),
            "cpu_over_floor_ms": round(server_cpu - floor_ms, 3),
        }
        if old_parts:
            old = LoadResult.merge(old_parts)
            if old.errors:
                say(f"{pattern} x{concurrency} bootcamp: {old.errors} errors, first: {old.first_error}")
            old_ms = old_cpu * 1000 / max(1, old.requests + old.errors)
            row.update({"bootcamp_rps": round(old.rps, 1), "bootcamp_p50_ms": round(old.percentile(50), 2),
                        "bootcamp_p99_ms": round(old.percentile(99), 2), "bootcamp_errors": old.errors,
                        "bootcamp_cpu_ms": round(old_ms, 3),
                        "cpu_of_bootcamp": round(server_cpu / old_ms, 3) if old_ms else None})
        callers = len(ops.callers(pattern, concurrency))
        detail = {"pattern": pattern, "concurrency": concurrency, "api": api.summary(),
                  "store": store.summary(), "floor": floor.summary(), "server_counters": delta,
                  # DynamoDB HTTP requests, botocore's retries included
                  "ddb_requests_per_request": per_request(delta, "dynamodb_requests", api),
                  # what the app adds to one request, at the median
                  "api_minus_store_p50_ms": round(api.percentile(50) - store.percentile(50), 2),
                  "window_s": round(window, 1),
                  "callers": callers,
                  "user_cache_refreshes_allowed": cache_rereads_allowed(
                      pattern, callers, window, ops.settings.user_cache_seconds),
                  # the direct store clients' DynamoDB HTTP requests per operation (retries)
                  "store_ddb_requests_per_op": round(store_requests / max(1, store.requests + store.errors), 4)}
        say(f"{pattern} x{concurrency}: api {row['api_rps']}/s ({api.requests} requests), "
            f"store {row['store_rps']}/s ({store.requests}), ratio {row['ratio']}, "
            f"p50 {row['p50_ms']} ms (store {store.percentile(50):.1f}), p99 {row['p99_ms']} ms, "
            f"ddb {row['ddb_calls_per_request']}/req, pg {row['pg_queries_per_request']}/req, "
            f"cpu {row['server_cpu_ms']} ms/req (boto3 alone {row['boto3_cpu_ms']})"
            + (f"; bootcamp {row['bootcamp_rps']}/s, cpu {row['bootcamp_cpu_ms']} ms/req"
               if "bootcamp_rps" in row else "")
            + f"; the floor app {row['floor_rps']}/s, ratio {row['floor_ratio']}")
        return row, detail

    def growth(self, ops: Ops) -> dict[str, Any]:
        """First-page p50 (concurrency 1) in a small and a large group (A) and for a user with few
        and with many groups (B). The target compares pages of the same size (limit=10: the small
        group has only ten messages); the default page (20) is given beside it."""
        ds, url, n = ops.ds, ops.url, self.plan.growth_requests
        small = handle(2)

        def p50s(small_path: str, large_path: str, count: int) -> tuple[float, float]:
            """p50 of the small and the large case, measured in alternating slices."""
            def worker(path: str, who: str) -> Operation:
                client = Client(url)
                headers = ops.auth[who]
                return lambda i: client.get(path, headers)
            cases = [[worker(small_path, small)], [worker(large_path, BIG)]]
            parts: list[list[LoadResult]] = [[], []]
            for case in cases:
                self.warm(case, 3)
            for _ in range(SLICES):
                for k, case in enumerate(cases):
                    parts[k].append(run_load(case, max(1, count // SLICES), self.plan.warmup_seconds,
                                             self.stop))
            merged = [LoadResult.merge(p) for p in parts]
            for result in merged:
                if result.errors:
                    say(f"growth: {result.errors} errors, first: {result.first_error}")
            return round(merged[0].percentile(50), 2), round(merged[1].percentile(50), 2)

        sizes = self.plan.sizes
        cases = {"A": (f"/api/messages/{ds.small_group}", f"/api/messages/{ds.big_group}",
                       "messages", sizes.small_messages, sizes.big_messages),
                 "B": ("/api/message_groups", "/api/message_groups",
                       "groups", bench_data.SMALL_USER_GROUPS, sizes.partners)}
        out: dict[str, Any] = {"requests": n, "limit": GROWTH_LIMIT}
        for pattern, (small_path, large_path, unit, small_n, large_n) in cases.items():
            figures = {}
            for limit in (GROWTH_LIMIT, None):
                query = f"?limit={limit}" if limit else ""
                count = n if limit else max(5, n // 2)
                a, b = p50s(small_path + query, large_path + query, count)
                figures[limit] = (a, b, round(b / a, 3) if a else None)
            (a, b, ratio), (da, db, dratio) = figures[GROWTH_LIMIT], figures[None]
            out[pattern] = {"small": {unit: small_n, "p50_ms": a}, "large": {unit: large_n, "p50_ms": b},
                            "ratio": ratio,
                            "default_page": {"small_p50_ms": da, "large_p50_ms": db, "ratio": dratio}}
        return out

    def activities(self, ops: Ops) -> list[dict[str, Any]]:
        """The home feed and one user's cruds (PostgreSQL), at concurrency 1 and 8."""
        rows = []
        for route, path in (("home", "/api/activities/home"), ("user", f"/api/activities/@{BIG}")):
            for concurrency in CONCURRENCY:
                def make(t: int, path: str = path) -> Operation:
                    client = Client(ops.url)
                    return lambda i: client.get(path)

                result, delta = self.counted(make, concurrency, self.plan.requests, warmup=2 * concurrency)
                row = {"route": route, "path": path, "concurrency": concurrency,
                       "rps": round(result.rps, 1), "p50_ms": round(result.percentile(50), 2),
                       "p99_ms": round(result.percentile(99), 2), "errors": result.errors,
                       "pg_queries_per_request": per_request(delta, "pg_queries", result)}
                say(f"activities {route} x{concurrency}: {row}")
                rows.append(row)
        return rows

    def operations(self, ops: Ops) -> list[dict[str, Any]]:
        """Issue 37: the newer operations through the API, one at a time, with the server's CPU,
        DynamoDB calls and PostgreSQL queries per request: editing a message, deleting one,
        buying a live-event ticket. (Their capacity units: bench/capacity.py; a block check is
        part of every send, C and D.)"""
        sender = ops.ds.senders[0]
        group, auth = ops.ds.group_with_big(sender), ops.auth[sender]
        total = min(self.plan.requests, 200)
        setup = Client(ops.url)
        warmup = 4
        rows = []

        def messages(label: str) -> list[str]:
            return [setup.send("POST", "/api/messages", auth, {"message": f"bench {label} {i}",
                                                             "message_group_uuid": group})["uuid"]
                    for i in range(total + warmup)]

        def each(method: str, uuids: list[str], body: dict[str, Any] | None) -> Callable[[int], Operation]:
            left = iter(uuids)  # each message changed once, warm-up first
            lock = threading.Lock()

            def make(t: int) -> Operation:
                client = Client(ops.url)

                def op(i: int) -> None:
                    with lock:
                        target = next(left)
                    client.send(method, f"/api/messages/{group}/{target}", auth, body)
                return op
            return make

        def ticket(t: int) -> Operation:
            client = Client(ops.url)
            return lambda i: client.send("POST", "/api/events/ticket", auth)

        for name, make in (("edit a message (PATCH)", each("PATCH", messages("to edit"), {"message": "edited"})),
                           ("delete a message (DELETE)", each("DELETE", messages("to delete"), None)),
                           ("buy a live-event ticket (POST /api/events/ticket)", ticket)):
            result, delta = self.counted(make, 1, total, warmup=warmup)
            row = {"operation": name, **one_at_a_time(result, delta),
                   "server_cpu_ms": round(delta.get("cpu_us", 0) / 1000 / max(1, result.requests + result.errors), 3)}
            say(f"operation {name}: {row}")
            rows.append(row)
        return rows

    def first_messages(self, ops: Ops) -> dict[str, Any]:
        """C when the pair has no conversation yet: the group is created with the message."""
        pairs = ops.ds.new_pairs

        def make(t: int) -> Operation:
            client = Client(ops.url)

            def op(i: int) -> None:
                sender, recipient = pairs[i]
                client.post("/api/messages", ops.auth[sender], {"message": f"first {i}", "handle": recipient})
            return op

        # the senders' tokens verified and users cached, as at steady state
        warm = Client(ops.url)
        for sender in sorted({p[0] for p in pairs}):
            warm.get("/api/message_groups", ops.auth[sender])
        result, delta = self.counted(make, 1, len(pairs), warmup=0)
        return {**one_at_a_time(result, delta),
                "jwks_fetches_per_request": per_request(delta, "jwks_fetches", result)}


def one_at_a_time(result: LoadResult, delta: dict[str, int]) -> dict[str, Any]:
    """An API run's figures: requests, errors, latency, and the server's calls per request."""
    return {"requests": result.requests, "errors": result.errors,
            "p50_ms": round(result.percentile(50), 2), "p99_ms": round(result.percentile(99), 2),
            "ddb_calls_per_request": per_request(delta, "dynamodb_calls", result),
            "pg_queries_per_request": per_request(delta, "pg_queries", result)}


def seed_cost(settings: Settings, messages: int) -> dict[str, Any]:
    """Ddb.batch_write of `messages` messages into a table of their own (so that the measured
    table does not grow); calls counted by batch_write and, independently, by botocore."""
    seeded = settings.with_(ddb_table=f"bench-seed-{os.getpid()}")
    table = ddb.Ddb(seeded)
    table_setup.create_table(table)
    try:
        seen: list[str] = []
        table.client.meta.events.register("before-call.dynamodb", lambda model, **_: seen.append(model.name))
        sender = {"uuid": "00000000-0000-4000-8000-000000000001", "display_name": "Seed", "handle": "seed"}
        group = layout.group_uuid_for(sender["uuid"], "00000000-0000-4000-8000-000000000002")
        start = datetime.now(timezone.utc)
        items = [layout.message_item(group, sender, f"seed {i}", times.iso(start + timedelta(milliseconds=i)))
                 for i in range(messages)]
        calls = table.batch_write(items)
        if calls != len(seen):
            raise RuntimeError(f"batch_write reported {calls} calls, botocore saw {len(seen)}")
        return {"items": messages, "ddb_calls": calls, "operations": sorted(set(seen))}
    finally:
        table.delete_table()


def machine(plan: Plan) -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "server": f"gunicorn {version('gunicorn')}, {WEB_WORKERS} worker (gevent)",
        "store": f"moto {version('moto')} server, as devstack.LocalMoto starts it",
        "client": "same machine: threads with a urllib3 connection (API) or a boto3 client (store) each",
        "mode": plan.mode,
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def run(plan: Plan, out: os.PathLike, stop: threading.Event, stack: BenchStack,
        bootcamp: Bootcamp | None = None) -> dict[str, Any]:
    started = time.monotonic()
    info = machine(plan)
    say(f"{plan.mode} run: starting PostgreSQL and moto")
    with contextlib.redirect_stdout(sys.stderr):  # load_data's "ready" lines are progress
        settings = stack.start_stores()
    say(f"users: {plan.sizes}")
    ds = bench_data.prepare_users(settings, plan.sizes)
    token_users = sorted({BIG, handle(1), handle(2), *ds.senders, *(s for s, _ in ds.new_pairs)})
    tokens = bench_data.tokens_for(settings, token_users)
    url = stack.start_api()
    floor_url = stack.start_floor()
    say(f"{len(ds.users)} users in PostgreSQL, {len(tokens)} tokens; api at {url}, "
        f"the floor app at {floor_url}")
    ops = Ops(settings, url, ds, tokens, floor_url)
    old_ops = None
    if bootcamp:
        old_url = bootcamp.start(settings, stack.stack, WEB_WORKERS, stack.tmp / "bootcamp.log")
        old_ops = Ops(settings, old_url, ds, tokens)
        info["bootcamp"] = (f"the week-5 backend, gunicorn {WEB_WORKERS} worker (gevent), "
                            f"CPU from /proc of its worker; at {old_url}")
    bench = Bench(plan, stack, stop, (bootcamp, old_ops) if bootcamp and old_ops else None)

    # First messages go first, while the table is small (the measured pairs must have none).
    c_first = bench.first_messages(ops)
    say(f"first messages (small table): {c_first}")
    bench_data.write_conversations(settings, plan.sizes, ds)
    say(f"data: {ds.items} items in {ds.calls} batch writes; measuring")

    rows, details = [], []
    growth = None
    for pattern in PATTERNS:
        if pattern == "C":
            # before any write, so that the small user still has exactly its ten groups
            growth = bench.growth(ops)
            say(f"growth: {growth}")
        for concurrency in CONCURRENCY:
            row, detail = bench.row(ops, pattern, concurrency)
            rows.append(row)
            details.append(detail)
    operation_rows = bench.operations(ops)
    bench_data.write_activities(settings, plan.sizes)
    activity_rows = bench.activities(ops)
    stream_result = stream.measure(settings, ds.users[handle(4)], ds.users[handle(5)],
                                   plan.stream_messages)
    say(f"stream: {stream_result}")
    lag = stream_lag.measure(settings, [ds.users[handle(n)] for n in range(1, LAG_USERS + 1)],
                             plan.lag_burst, plan.lag_backlog)
    say(f"stream worker lag: {lag}")
    live_result = {
        **live.latency(settings, stack.tmp, tokens, handle(1), handle(2), plan.live_messages),
        "idle": live.idle_streams(
            url, stack.stack.processes["api"].pid, list(tokens.values()), plan.idle_streams,
            lambda: run_load([ops.api("B", 0)], plan.requests, plan.max_seconds, stop),
            stack.metrics, plan.idle_seconds, 15.0),
    }
    live_result["hostile"] = live.hostile(
        settings, stack.tmp, tokens[handle(1)], tokens[handle(2)],
        lambda at: run_load([Ops(settings, at, ds, tokens).api("B", t) for t in range(CONCURRENCY[-1])],
                            plan.requests, plan.max_seconds, stop),
        plan.hostile_attempts)
    say(f"live events: {live_result}")
    capacity_result = capacity.measure(settings, [ds.users[handle(n)] for n in range(1, CAPACITY_USERS + 1)])
    say(f"capacity: {[(o['operation'], o['write_total'], o['rcu']) for o in capacity_result['operations']]}")
    seed = {**seed_cost(settings, plan.seed_messages), "dataset_items": ds.items,
            "dataset_calls": ds.calls}
    result: dict[str, Any] = {
        "machine": info,
        "rows": rows,
        "activities": activity_rows,
        "operations": operation_rows,
        "stream": stream_result,
        "stream_lag": lag,
        "live": live_result,
        "capacity": capacity_result,
        "seed": seed,
        "growth": growth,
        "c_first": c_first,
        "runs": details,
        "config": {**asdict(plan), "sizes": asdict(plan.sizes),
                   "users_in_postgres": len(ds.users), "cognito_users": plan.sizes.cognito_users},
    }
    result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    result["targets"] = report.targets(result)
    result["config"]["duration_s"] = round(time.monotonic() - started, 1)
    report.write_json(result, Path(out))
    return result


def scale_only(out: str) -> int:
    """`--scale`: the bench's own PostgreSQL (and moto, which it does not use), the event log's
    figures (bench/scale.py), printed and written to `out`."""
    sigterm_as_keyboard_interrupt()
    stack = BenchStack()
    try:
        say("scale: starting PostgreSQL")
        settings = stack.start_stores()
        figures = scale.measure(settings.connection_url)
        for row in figures["appends"]:
            say(f"scale: {row['appenders']:>2} appenders: {row['events_per_s']} events/s "
                f"({row['appends_per_s']} appends/s of {scale.RECORDS_PER_BATCH} messages), "
                f"append p50 {row['append_p50_ms']} ms, p99 {row['append_p99_ms']} ms")
        for row in figures["fanout"]:
            say(f"scale: {row['listeners']:>2} listeners: {row['appends_per_s']} one-message appends/s, "
                f"delivery p50 {row['delivery_p50_ms']} ms, p99 {row['delivery_p99_ms']} ms "
                f"({row['notifications']} notifications)")
        report.write_json({"machine": machine(QUICK), "scale": figures}, Path(out))
        say(f"figures written to {out}")
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/bench", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a smaller data set and fewer requests: a smoke check in under a minute")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"JSON output (default {DEFAULT_OUT})")
    parser.add_argument("--bootcamp", metavar="DIR", type=Path,
                        help="also serve and measure the bootcamp's week-5 backend-flask in DIR "
                             "(bench/bootcamp.py; docs/performance.md)")
    parser.add_argument("--bootcamp-python", metavar="PYTHON",
                        help="the Python that runs it (default DIR/.venv/bin/python)")
    parser.add_argument("--scale", action="store_true",
                        help="only the event log's limits (bench/scale.py; docs/scale.md): appends with "
                             "1, 4 and 16 appenders, NOTIFY to 1, 4 and 16 listeners")
    args = parser.parse_args(argv)
    if args.scale:
        return scale_only(args.out if args.out != str(DEFAULT_OUT) else str(SCALE_OUT))
    bootcamp = Bootcamp(args.bootcamp, args.bootcamp_python) if args.bootcamp else None
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plan = QUICK if args.quick else FULL
    sigterm_as_keyboard_interrupt()
    stop = threading.Event()
    stack = BenchStack()
    code = 0
    try:
        result = run(plan, args.out, stop, stack, bootcamp)
        print(report.table(result))
        say(f"figures written to {args.out}")
    except KeyboardInterrupt:
        say("interrupted; stopping")
        code = 130
    except Exception as error:
        log.exception("benchmark failed")
        say(f"failed: {type(error).__name__}: {error}")
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop.set()
        stack.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
