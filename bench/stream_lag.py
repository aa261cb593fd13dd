"""How far behind the conversation lists are: the local stream worker's lag (issue 26, item 1).

On a table of its own, the stream worker runs in a process of its own as ./bin/dev runs it (the
deployed mapping's batch size and filter, the Lambda loaded from its file, a poll every 0.3 s when
idle). A burst of messages is sent from 8 threads through the conversation store, as the API sends
them. A message's lag is the time from its write (its sk, the time the store gave it) to the end
of the invocation that brought both group rows to it: how long a conversation list shows an older
last message.

Twice: on a fresh stack, and on a restarted one: the worker stopped, a backlog of messages written
meanwhile, the worker started again from its checkpoint (a new container), and the same burst sent
at once. The restarted figures include the wait behind the backlog, which is what a user of a
restarted stack sees; beside them, how fast the backlog was replayed against the live pace."""
from __future__ import annotations

import multiprocessing
import os
import queue
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.load import percentile
from lib import ddb
from lib.config import Settings
from lib.conversations import table_setup
from lib.conversations.store import ConversationStore
from lib.conversations.records import new_message

SENDERS = 8
WAIT_SECONDS = 300


def _worker(settings: Settings, checkpoint: str, applied: Any, stop: Any) -> None:
    """The child process: the stream worker, telling the parent when each message was applied."""
    import logging

    from devstack.stream_worker import (StreamWorker, failed_position, lambda_environment,
                                         load_lambda)

    logging.basicConfig(level=logging.WARNING)
    os.environ.update({**lambda_environment(settings), "LOG_LEVEL": "WARNING"})
    handler = load_lambda().lambda_handler
    worker: StreamWorker

    def timed(event: dict[str, Any], context: Any) -> Any:
        answer = handler(event, context)
        done = time.time()
        records = event["Records"]
        position = failed_position(records, answer)
        uuids = [m.message_uuid for m in map(new_message, records[:position]) if m is not None]
        applied.put((done, worker.records_read, uuids))
        return answer

    worker = StreamWorker(settings, timed, Path(checkpoint))
    worker.run(stop, 0.3)


class _Worker:
    """The worker's process, and what it has reported: {message uuid: time applied}, and the
    records it had read by then."""

    def __init__(self, settings: Settings, checkpoint: Path):
        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue()
        self._stop = context.Event()
        self.applied: dict[str, float] = {}
        self.read_by: dict[str, int] = {}
        self.started = time.time()
        self._process = context.Process(target=_worker, daemon=True,
                                        args=(settings, str(checkpoint), self._queue, self._stop))
        self._process.start()

    def wait_for(self, uuids: list[str]) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not all(u in self.applied for u in uuids):
            if time.monotonic() > deadline or not self._process.is_alive():
                raise RuntimeError(f"the stream worker applied {sum(u in self.applied for u in uuids)} "
                                   f"of {len(uuids)} messages")
            try:
                done, read, batch = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            for uuid in batch:
                self.applied.setdefault(uuid, done)
                self.read_by.setdefault(uuid, read)

    def stop(self) -> None:
        self._stop.set()
        self._process.join(30)
        if self._process.is_alive():
            self._process.kill()


def _created(sk: str) -> float:
    return datetime.fromisoformat(sk).timestamp()


def _send(store: ConversationStore, pairs: list[tuple[dict, str]], count: int, tag: str) -> dict[str, float]:
    """`count` messages round the pairs' groups from SENDERS threads: {uuid: time written}."""
    def one(n: int) -> tuple[str, float]:
        sender, group = pairs[n % len(pairs)]
        message = store.send_to_group(sender, group, f"{tag} {n}").message
        return message.uuid, _created(message.created_at)

    with ThreadPoolExecutor(SENDERS) as pool:
        return dict(pool.map(one, range(count)))


def _lags(written: dict[str, float], worker: _Worker) -> dict[str, Any]:
    lags = sorted(worker.applied[u] - t for u, t in written.items())
    return {
        "messages": len(lags),
        "lag_p50_s": round(percentile(lags, 50), 3),
        "lag_p99_s": round(percentile(lags, 99), 3),
        "lag_max_s": round(lags[-1], 3),
    }


def measure(settings: Settings, people: list[dict[str, Any]], burst: int, backlog: int) -> dict[str, Any]:
    """`people` in pairs, one conversation each; a burst of `burst` messages on a fresh stack, then
    a backlog of `backlog` messages while the worker is stopped, and the burst again on restart."""
    own = settings.with_(ddb_table=f"bench-lag-{os.getpid()}")
    table = ddb.Ddb(own)
    store = ConversationStore(table)
    table_setup.create_table(store.table)
    folder = Path(tempfile.mkdtemp(prefix="cruddur-bench-lag-"))
    worker = None
    try:
        pairs = []
        for a, b in zip(people[::2], people[1::2]):
            pairs.append((a, store.send_to_user(a, b, "hello").message.message_group_uuid))
        worker = _Worker(own, folder / "checkpoint.json")
        started = time.time()
        written = _send(store, pairs, burst, "live")
        worker.wait_for(list(written))
        live_seconds = max(worker.applied[u] for u in written) - started
        live_records = max(worker.read_by[u] for u in written)
        fresh = {**_lags(written, worker), "groups": len(pairs),
                 "records_per_s": round(live_records / live_seconds, 1)}
        worker.stop()

        kept = _send(store, pairs, backlog, "while stopped")
        worker = _Worker(own, folder / "checkpoint.json")  # from its checkpoint, a new container
        restarted_at = worker.started
        written = _send(store, pairs, burst, "after the restart")
        worker.wait_for(list(kept) + list(written))
        caught_up = max(worker.applied[u] for u in kept)
        replayed = max(worker.read_by[u] for u in kept)
        restarted = {
            **_lags(written, worker), "groups": len(pairs), "backlog_messages": len(kept),
            "backlog_records": replayed,
            "backlog_replayed_s": round(caught_up - restarted_at, 2),
            "replay_records_per_s": round(replayed / (caught_up - restarted_at), 1),
        }
        return {"fresh": fresh, "restarted": restarted}
    finally:
        if worker is not None:
            worker.stop()
        table.delete_table()
