"""Under load, with the stream worker killed and restarted mid-flow, nothing is lost or doubled.

16 clients each send 50 messages through HTTP into conversations they share. Every accepted
message is stored exactly once and reachable through pagination, every group row ends on its
group's newest message, and no request gets a 5xx."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urljoin

import pytest
import requests

from lib import ddb as dynamo
from lib.db import Db
from devstack import access_token, api_env, free_port, gunicorn_command, stop_process, wait_http
from devstack.seed import user_by_handle
from tests import tables

CLIENTS = 16
MESSAGES_PER_CLIENT = 50
HANDLES = ["andrewbrown", "bayko", "londo"]


def start_worker(env: dict[str, str], checkpoint) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.ddb", "stream-worker", "--checkpoint", str(checkpoint),
                             "--interval", "0.1"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def next_link(response: requests.Response) -> str | None:
    link = response.links.get("next")
    return urljoin(response.url, link["url"]) if link else None  # a relative reference


@pytest.mark.slow
def test_concurrent_clients_lose_nothing_and_double_nothing(fresh_table, tmp_path, harsh):
    """Under the harsh local stack (a lagging index, lost responses, throttling, duplicated stream
    records) and a stream worker killed mid-flow."""
    settings = fresh_table
    env = {**api_env(settings), "CURSOR_SECRET": "load-test"}
    port = free_port()
    server = subprocess.Popen(gunicorn_command(port, workers=2), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = tmp_path / "worker.json"
    worker = start_worker(env, checkpoint)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/health-check", server, "api")
        tokens = {h: access_token(settings, h) for h in HANDLES}
        db = Db(settings)
        users = {h: user_by_handle(db, h) for h in HANDLES}
        db.close()

        accepted: dict[str, list[dict]] = {}  # client -> replies
        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def client(n: int) -> None:
            me = HANDLES[n % 3]
            other = HANDLES[(n + 1 + (n // 3) % 2) % 3]  # each pair is shared by several clients
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {tokens[me]}"
            replies = []
            group = None
            for i in range(MESSAGES_PER_CLIENT):
                body = {"message": f"client {n} message {i}"}
                body.update({"message_group_uuid": group} if group else {"handle": other})
                key = f"load-{n}-{i}-{uuid.uuid4().hex[:8]}"
                for _ in range(20):  # a careful client retries 503 with the same key
                    response = session.post(f"{url}/api/messages", json=body, timeout=30,
                                            headers={"Idempotency-Key": key})
                    with lock:
                        statuses[response.status_code] += 1
                    if response.status_code != 503:
                        break
                    time.sleep(float(response.headers.get("Retry-After", "1")) / 4)
                if response.status_code == 200:
                    # the first (by handle) names the conversation; the rest go into it (D),
                    # whose replies do not
                    group = group or response.json()["message_group_uuid"]
                    replies.append({**response.json(), "message_group_uuid": group})
            with lock:
                accepted[f"{n}"] = replies

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        # Kill the stream worker without warning while messages flow, then start it again.
        time.sleep(1.0)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        worker = start_worker(env, checkpoint)
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads)

        assert not [s for s in statuses if s >= 500 and s != 503], statuses
        sent = [reply for replies in accepted.values() for reply in replies]
        assert len(sent) == CLIENTS * MESSAGES_PER_CLIENT, statuses

        # Exactly once in storage...
        by_group: dict[str, set[str]] = {}
        for reply in sent:
            by_group.setdefault(reply["message_group_uuid"], set()).add(reply["uuid"])
        assert len({r["uuid"] for r in sent}) == len(sent)
        ddb = dynamo.Ddb(settings)
        for group, uuids in by_group.items():
            stored = []
            after = None
            while True:
                page = tables.messages_page(ddb, group, 100, after)
                stored += [i["message_uuid"] for i in page.items]
                if not page.next_sk:
                    break
                after = page.next_sk
            assert sorted(stored) == sorted(uuids)

        # ...and reachable through the API's pagination, oldest first within each page.
        for group, uuids in by_group.items():
            participant = next(r["handle"] for r in sent if r["message_group_uuid"] == group)
            seen: list[str] = []
            link = f"{url}/api/messages/{group}?limit=100"
            while link:
                response = requests.get(link, headers={"Authorization": f"Bearer {tokens[participant]}"}, timeout=30)
                assert response.status_code == 200
                times = [m["created_at"] for m in response.json()]
                assert times == sorted(times)
                seen += [m["uuid"] for m in response.json()]
                link = next_link(response)
            assert len(seen) == len(set(seen)) == len(uuids)
            assert set(seen) == uuids

        # Every group row ends on its group's newest message: exactly one row per participant.
        newest = {}
        for reply in sent:
            group = reply["message_group_uuid"]
            if group not in newest or reply["created_at"] > newest[group]["created_at"]:
                newest[group] = reply

        def behind() -> dict[str, tuple[dict, list[dict]]]:
            """The groups whose rows are not exactly two at the newest message."""
            wrong = {}
            for group, last in newest.items():
                rows = tables.group_rows(ddb, group)
                if len(rows) != 2 or any(r["sk"] != last["created_at"] or r["message"] != last["message"]
                                         for r in rows):
                    wrong[group] = (last, rows)
            return wrong

        deadline = time.monotonic() + 60
        while behind() and time.monotonic() < deadline:
            time.sleep(0.2)
        wrong = behind()
        assert not wrong, "\n".join(
            f"{group}: newest {last['created_at']} {last['message']!r}, rows "
            f"{[(r['pk'][:12], r['sk'], r['message']) for r in rows]}"
            for group, (last, rows) in wrong.items())
        for h in HANDLES:
            rows = tables.groups_page(ddb, users[h]["uuid"], 100).items
            assert len(rows) == len({r["message_group_uuid"] for r in rows})
    finally:
        stop_process(worker)
        stop_process(server)
