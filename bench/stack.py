"""The benchmark's own local stack: embedded PostgreSQL in a temporary directory, moto's server and
the API under gunicorn, each on a free port of 127.0.0.1, started as ./bin/dev starts them
(devstack) and stopped in reverse order whatever happens."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import requests

from lib.config import Settings
from devstack import Stack, free_port, start_api, start_stores

# One worker, so that GET /api/_metrics reports the whole server's counters (gevent, as ./bin/dev
# serves it).
WEB_WORKERS = 1


def api_metrics(url: str) -> dict[str, Any]:
    """The counters of the API served at `url` (GET /api/_metrics, on with METRICS_ENABLED)."""
    response = requests.get(f"{url}/api/_metrics", timeout=30)
    response.raise_for_status()
    return response.json()


class BenchStack:
    """Start with `start_stores()` then `start_api()`; `stop()` undoes whatever was started."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="cruddur-bench-"))
        self.stack = Stack()
        self.stack.on_stop(lambda: shutil.rmtree(self.tmp, ignore_errors=True))
        self.settings: Settings | None = None
        self.api_url: str | None = None
        self.floor_url: str | None = None

    def start_stores(self) -> Settings:
        """PostgreSQL and moto, with schemas and the usual seed (devstack.start_stores)."""
        self.settings = start_stores(self.stack, self.tmp)
        return self.settings

    def start_api(self) -> str:
        """The API exactly as ./bin/dev serves it (gunicorn, gevent), with the call counters on."""
        assert self.settings is not None
        self.api_url = start_api(
            self.settings, self.stack, free_port(), workers=WEB_WORKERS,
            # The idle-streams figure models 1,000 users' one stream each with the bench's few
            # dozen signed-in users: the caps per user are lifted here (bench/live.py's hostile
            # figure runs on an API with the defaults).
            env={"METRICS_ENABLED": "1", "CURSOR_SECRET": "bench-cursor-secret-" + self.tmp.name,
                 "EVENTS_STREAMS_PER_USER": "1000", "EVENTS_TICKETS_PER_USER": "1000"},
            log_file=self.tmp / "api.log")
        return self.api_url

    def start_floor(self) -> str:
        """bench/floor_app.py, served as the API is (`start_api`), with as many workers."""
        assert self.settings is not None
        self.floor_url = start_api(self.settings, self.stack, free_port(), workers=WEB_WORKERS,
                                   log_file=self.tmp / "floor.log",
                                   app="bench.floor_app:create_app()", name="floor app")
        return self.floor_url

    def floor_cpu_seconds(self) -> float:
        """The floor app's workers' CPU so far (its master only supervises)."""
        from bench.bootcamp import children_cpu_seconds

        return children_cpu_seconds(self.stack.processes["floor app"].pid)

    def metrics(self) -> dict[str, Any]:
        assert self.api_url is not None
        return api_metrics(self.api_url)

    def stop(self) -> None:
        self.stack.stop()
