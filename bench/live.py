"""Live events (issue 27): what a page waits for an event, what an open stream costs.

- Post-to-event latency. Two API servers (one gunicorn worker each) over a table of their own,
  and the stream worker running both of the stream's Lambdas, as ./bin/dev runs it. A receiver
  holds a stream on each server; a sender posts through the first. For each message: the time
  from the POST being sent to the `message` event arriving on the stream of the same process,
  and on the other process's stream (whatever process posts, the event reaches every process
  through PostgreSQL's NOTIFY: the two figures should match). Beside it, the CPU of one event end
  to end (issue 37): the stream worker's (both Lambdas, and its polling of the stream, which AWS
  does for a deployed Lambda) and the other process's (it only delivers the event to its stream),
  each per message, over what the process spends idle in the same time, with the delivering
  process's PostgreSQL queries per message.
- Idle streams. On the benchmark's main API server (one worker), pattern B is measured, then
  1,000 streams of the benchmark's signed-in users are opened on that worker and left idle, and B is measured again
  beside them. Memory per idle stream: the worker's resident memory before and after, over the
  streams. Cost of an idle connected user: the server's DynamoDB calls and PostgreSQL queries
  while the streams sit idle, per stream and hour; what an idle stream sends (pings).
"""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

import requests

from bench.bootcamp import children_cpu_seconds, process_cpu_seconds
from bench.load import LoadResult, percentile
from bench.stack import api_metrics
from devstack import Stack, free_port, start_api, start_stream_worker
from devstack.processes import children_of
from devstack.sse import EventStream
from lib.config import Settings
from lib.ddb import Ddb
from lib.conversations import table_setup

GAP_SECONDS = 0.25  # between two measured messages
IDLE_SECONDS = 5.0  # what the processes spend doing nothing, measured before the messages


def _ticket(url: str, token: str) -> str:
    response = requests.post(f"{url}/api/events/ticket", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    return response.json()["ticket"]


def latency(settings: Settings, tmp: Path, tokens: dict[str, str], sender: str, receiver: str,
            messages: int) -> dict[str, Any]:
    """Post-to-event latency, same process and across processes, and the CPU of an event end to
    end (see the module's docstring): {"latency": ..., "end_to_end": ...}."""
    own = settings.with_(ddb_table=f"bench-live-{int(time.time())}")
    table_setup.set_up_table(Ddb(own))
    stack = Stack()
    try:
        env = {"CURSOR_SECRET": "bench-live", "METRICS_ENABLED": "1"}
        posting, other = (start_api(own, stack, free_port(), workers=1, env=env, name=f"live api {i}",
                                    log_file=tmp / f"live-api-{i}.log") for i in (1, 2))
        start_stream_worker(own, stack, tmp / "live-stream.json", log_file=tmp / "live-stream.log")
        streams = {"same process": EventStream.open(posting, _ticket(posting, tokens[receiver])),
                   "across processes": EventStream.open(other, _ticket(other, tokens[receiver]))}
        auth = {"Authorization": f"Bearer {tokens[sender]}"}
        group = None
        waits: dict[str, list[float]] = {name: [] for name in streams}
        delivering = stack.processes["live api 2"].pid
        worker = stack.processes["stream"].pid
        for i in range(messages + 1):  # the first creates the conversation, and is not counted
            text = f"live bench {i}"
            sent_at = time.monotonic()
            body = {"message": text, **({"message_group_uuid": group} if group else {"handle": receiver})}
            reply = requests.post(f"{posting}/api/messages", json=body, headers=auth, timeout=30)
            reply.raise_for_status()
            group = group or reply.json()["message_group_uuid"]
            for name, stream in streams.items():
                [event] = stream.take(1, timeout=30, where=lambda e: e.event == "message" and e.data["message"] == text)
                if i:
                    waits[name].append((event.at - sent_at) * 1000)
            if i == 0:  # every process has started and met the conversation: now what each spends idle
                cpu = CpuMeter({"the stream worker (both Lambdas)": lambda: process_cpu_seconds(worker),
                                "delivery (the other process)": lambda: children_cpu_seconds(delivering)})
                time.sleep(IDLE_SECONDS)
                cpu.idle_done()
                queries = -api_metrics(other)["pg_queries"]
            time.sleep(GAP_SECONDS)
        cpu_per_message = cpu.per_operation(messages)
        queries += api_metrics(other)["pg_queries"]
        for stream in streams.values():
            stream.close()
        return {"latency": {name: {"messages": len(ms), "p50_ms": round(percentile(ms, 50), 1),
                                   "p99_ms": round(percentile(ms, 99), 1)} for name, ms in waits.items()},
                "end_to_end": {"messages": messages, "cpu_ms": cpu_per_message,
                               "delivery_pg_queries_per_message": round(queries / messages, 2)}}
    finally:
        stack.stop()
        Ddb(own).delete_table()


class CpuMeter:
    """Processes' CPU per operation, each over what it spent idle: made, left idle, `idle_done()`,
    then the operations, then `per_operation(count)`."""

    def __init__(self, processes: dict[str, Callable[[], float]]):
        self.processes = processes
        self.started = time.monotonic()
        self.at_start = {name: read() for name, read in processes.items()}

    def idle_done(self) -> None:
        now = time.monotonic()
        self.idle_rate = {name: (read() - self.at_start[name]) / (now - self.started)
                          for name, read in self.processes.items()}
        self.started, self.at_start = now, {name: read() for name, read in self.processes.items()}

    def per_operation(self, count: int) -> dict[str, float]:
        """ms of CPU per operation, each process's idle rate over the time taken out."""
        elapsed = time.monotonic() - self.started
        return {name: round(max(0.0, read() - self.at_start[name] - self.idle_rate[name] * elapsed)
                            * 1000 / count, 2) for name, read in self.processes.items()}


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def open_stream(url: str, ticket: str) -> tuple[int, socket.socket | None]:
    """A stream opened as a browser opens it: (its status, and the open socket when 200, once
    its first bytes are read, so that the stream is open on the server; nothing after)."""
    host, port = url.rsplit("//", 1)[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"GET /api/events?ticket={ticket} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    seen = b""
    while b"retention" not in seen and (not seen.startswith(b"HTTP/1.1 ") or seen.startswith(b"HTTP/1.1 200")):
        chunk = sock.recv(4096)
        if not chunk:
            break
        seen += chunk
    status = int(seen.split(b" ", 2)[1]) if seen.startswith(b"HTTP/1.1 ") and len(seen) > 12 else 0
    if status != 200 or b"retention" not in seen:
        sock.close()
        return status, None
    return status, sock


def open_idle_stream(url: str, ticket: str) -> socket.socket:
    """A stream that must open (see open_stream), then left alone."""
    status, sock = open_stream(url, ticket)
    if sock is None:
        raise RuntimeError(f"the stream was refused: {status}")
    return sock


def idle_streams(url: str, master_pid: int, tokens: list[str], count: int, measure_b: Callable[[], LoadResult],
                 metrics: Callable[[], dict[str, int]], idle_seconds: float, ping_seconds: float) -> dict[str, Any]:
    """Pattern B without and with `count` idle streams on one worker; memory and cost per stream."""
    [worker] = children_of(master_pid)
    without = measure_b()
    rss_before = _rss_bytes(worker)
    tickets = [_ticket(url, tokens[i % len(tokens)]) for i in range(count)]
    sockets: list[socket.socket] = []
    lock = threading.Lock()

    def open_some(part: list[str]) -> None:
        for ticket in part:
            sock = open_idle_stream(url, ticket)
            with lock:
                sockets.append(sock)

    threads = [threading.Thread(target=open_some, args=(tickets[i::16],)) for i in range(16)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if len(sockets) != count:
            raise RuntimeError(f"opened {len(sockets)} of {count} streams")
        time.sleep(2)
        rss_after = _rss_bytes(worker)
        before = metrics()
        time.sleep(idle_seconds)
        after = metrics()
        with_streams = measure_b()
        hours = idle_seconds * count / 3600
        calls = {k: after.get(k, 0) - before.get(k, 0) for k in ("dynamodb_requests", "pg_queries")}
        return {
            "streams": count,
            "b_without": without.summary(), "b_with": with_streams.summary(),
            "b_p99_ratio": round(with_streams.percentile(99) / without.percentile(99), 3),
            "memory_per_stream_kib": round((rss_after - rss_before) / count / 1024, 1),
            "idle_seconds": idle_seconds,
            "idle_dynamodb_calls_per_user_hour": round(calls["dynamodb_requests"] / hours, 2),
            "idle_pg_queries_per_user_hour": round(calls["pg_queries"] / hours, 2),
            "idle_pings_per_user_hour": round(3600 / ping_seconds),
        }
    finally:
        for sock in sockets:
            sock.close()


# Workers of the API the hostile figure runs on: the cap holds per worker, and is held on each.
HOSTILE_WORKERS = 2


def hostile(settings: Settings, tmp: Path, holder: str, attacker: str,
            measure_b: Callable[[str], LoadResult], attempts: int) -> dict[str, Any]:
    """Issue 33, item 1: one user holds the cap of streams on every worker of an API served with
    the default caps, and a second user makes `attempts` attempts at more (a ticket, then a
    stream) while pattern B is measured there; beside B measured alone on the same API, and the
    health check asked throughout. `holder` and `attacker` are access tokens."""
    stack = Stack()
    held: list[socket.socket] = []
    try:
        url = start_api(settings, stack, free_port(), workers=HOSTILE_WORKERS,
                        env={"CURSOR_SECRET": "bench-hostile", "METRICS_ENABLED": "1"},
                        name="hostile api", log_file=tmp / "hostile-api.log")
        alone = measure_b(url)
        refusals: dict[str, int] = {}

        def attempt(token: str) -> socket.socket | None:
            bought = requests.post(f"{url}/api/events/ticket", headers={"Authorization": f"Bearer {token}"},
                                   timeout=30)
            if bought.status_code != 200:
                key = f"{bought.status_code} {bought.json()[0]}"
                refusals[key] = refusals.get(key, 0) + 1
                return None
            status, sock = open_stream(url, bought.json()["ticket"])
            if sock is None:
                refusals[f"{status} stream"] = refusals.get(f"{status} stream", 0) + 1
            return sock

        cap = 5 * HOSTILE_WORKERS  # EVENTS_STREAMS_PER_USER's default, on each worker
        for _ in range(cap * 20):  # connections reach the workers as the kernel hands them out
            sock = attempt(holder)
            if sock is not None:
                held.append(sock)
            if len(held) >= cap:
                break
        holder_refusals = dict(refusals)
        refusals.clear()
        health: list[int] = []
        done = threading.Event()
        attacker_streams: list[socket.socket] = []

        def attack() -> None:
            for _ in range(attempts):
                sock = attempt(attacker)
                if sock is not None:
                    attacker_streams.append(sock)
            done.set()

        def check_health() -> None:
            while not done.is_set():
                try:
                    health.append(requests.get(f"{url}/api/health-check", timeout=10).status_code)
                except requests.RequestException:
                    health.append(0)
                done.wait(0.1)

        threads = [threading.Thread(target=attack), threading.Thread(target=check_health)]
        for thread in threads:
            thread.start()
        beside = measure_b(url)
        for thread in threads:
            thread.join()
        for sock in attacker_streams:
            sock.close()
        return {
            "workers": HOSTILE_WORKERS,
            "holder_streams_open": len(held), "holder_refused": holder_refusals,
            "attacker_attempts": attempts, "attacker_streams_open": len(attacker_streams),
            "attacker_refused": refusals,
            "b_alone": alone.summary(), "b_beside": beside.summary(),
            "b_p99_ratio": round(beside.percentile(99) / alone.percentile(99), 3) if alone.percentile(99) else None,
            "health_checks": len(health), "health_checks_ok": sum(1 for s in health if s == 200),
        }
    finally:
        for sock in held:
            sock.close()
        stack.stop()
