"""Live events in a real browser against ./bin/dev (issue 27): Debian's Chromium, driven by
playwright-core, on a small page that uses only the browser's own EventSource and fetch
(tests/browser/live.html). It receives a message another user posts through the API, then closes
its stream, reopens it as the contract says (a new ticket, `last_event_id`) and receives what
was posted meanwhile, once, in order."""
from __future__ import annotations

import functools
import os
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from devstack import access_token, free_port
from lib import config
from tests.stack.test_dev import START_TIMEOUT, dev_env, start

ROOT = config.ROOT
PAGES = ROOT / "tests" / "browser"
DRIVER = ROOT / ".local" / "browser"  # playwright-core, installed from tests/browser's lock
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def install_driver() -> Path:
    """playwright-core as tests/browser/package-lock.json pins it (once; again when the lock changes)."""
    lock = (PAGES / "package-lock.json").read_bytes()
    if not (DRIVER / "node_modules" / "playwright-core").is_dir() or \
            (DRIVER / "package-lock.json").read_bytes() != lock:
        DRIVER.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(PAGES / name, DRIVER / name)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=DRIVER,
                       check=True, timeout=300, capture_output=True)
    return DRIVER


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve_pages(port: int) -> http.server.ThreadingHTTPServer:
    """tests/browser/ over HTTP: the page's origin, the one FRONTEND_URL lets through CORS."""
    handler = functools.partial(_Quiet, directory=str(PAGES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# On a laptop without a browser the test is skipped; in CI (.ci/run installs Debian's chromium
# where it can) a missing browser fails it instead, so that CI never passes without opening one.
MISSING = None if CHROMIUM and shutil.which("node") else (
    "needs a browser and node: `sudo apt-get install chromium nodejs`, then "
    "`./bin/test tests/stack/test_browser_live.py` runs it")


@pytest.mark.skipif(MISSING is not None and os.environ.get("CI") != "true", reason=MISSING or "")
def test_a_page_receives_live_events_and_what_it_missed_after_reconnecting(tmp_path):
    assert MISSING is None, MISSING
    driver = install_driver()
    page_port = free_port()
    pages = serve_pages(page_port)
    origin = f"http://127.0.0.1:{page_port}"
    base = Path(tempfile.mkdtemp(prefix="cruddur-browser-test-"))
    dev = start(dev_env(base / "pgdata", FRONTEND_URL=origin), tmp_path)
    try:
        dev.wait_for("ready  api", START_TIMEOUT)
        stores = config.load({}).with_(aws_endpoint_url=f"http://127.0.0.1:{dev.env['LOCAL_AWS_PORT']}")
        env = {"PATH": dev.env["PATH"], "NODE_PATH": str(driver / "node_modules"), "CHROMIUM": CHROMIUM,
               "PAGE_URL": f"{origin}/live.html", "API_URL": f"http://127.0.0.1:{dev.port}",
               "RECEIVER_TOKEN": access_token(stores, "bayko"), "RECEIVER_HANDLE": "bayko",
               "SENDER_TOKEN": access_token(stores, "andrewbrown")}
        run = subprocess.run(["node", str(PAGES / "live.js")], env=env, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout.strip().splitlines()[-1])
        assert result["problems"] == []
        received = result["received"]
        messages = [e["data"]["message"] for e in received if e["event"] == "message"]
        # the live message, then, after the reconnect, exactly what was posted while away, once
        assert messages == [result["first"], *result["away"]]
        ids = [int(e["id"]) for e in received]
        assert ids == sorted(set(ids)), ids
        assert not any(e["event"] == "reset" for e in received)
        assert any(e["event"] == "conversation" and e["data"]["message"] == result["away"][-1]
                   for e in received), "the conversation row followed"
        changed = [e["data"] for e in received if e["event"] == "message_changed"]
        assert [(c["message"], c["message"] == result["edited"]) for c in changed] == [(result["edited"], True)]
        assert changed[0]["edited_at"] and changed[0]["message_group_uuid"]
        deleted = [e["data"] for e in received if e["event"] == "message_deleted"]
        assert deleted == [result["deleted"]], "the deletion arrived, once"
        rows = [e["data"]["message"] for e in received if e["event"] == "conversation"]
        assert rows[-1] == result["away"][0], "the row fell back to the message before"
        dev.stop()
    finally:
        dev.cleanup()
        pages.shutdown()
        shutil.rmtree(base, ignore_errors=True)
