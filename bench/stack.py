"""The benchmark's own local stack: embedded PostgreSQL in a temporary directory, moto's server and
the API under gunicorn, each on a free port of 127.0.0.1, started as ./bin/dev starts them and
stopped in reverse order whatever happens."""
from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

import requests

from lib import config
from lib.cli.dev import DATABASE, app_env, gunicorn_command, load_data, wait_http
from lib.config import Settings
from lib.local_stack import LocalMoto, LocalPostgres, free_port, stop_process

log = logging.getLogger("bench")

# One worker, so that GET /api/_metrics reports the whole server's counters; eight threads, as
# ./bin/dev gives each worker by default.
WEB_WORKERS = 1
WEB_THREADS = 8


class BenchStack:
    """Start with `start_stores()` then `start_api()`; `stop()` undoes whatever was started."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="cruddur-bench-"))
        self._stoppers: list[Callable[[], None]] = [
            lambda: shutil.rmtree(self.tmp, ignore_errors=True)]
        self.settings: Settings | None = None
        self.api_url: str | None = None
        self.api_proc: subprocess.Popen | None = None

    def start_stores(self) -> Settings:
        """PostgreSQL and moto, with schemas and the usual seed (lib.cli.dev.load_data)."""
        pg = LocalPostgres(self.tmp / "pgdata", free_port())
        self._stoppers.append(pg.stop)
        pg.start()
        moto = LocalMoto(free_port(), self.tmp / "moto.log")
        self._stoppers.append(moto.stop)
        moto.start()
        base = config.load({}).with_(
            connection_url=f"postgresql://postgres@127.0.0.1:{pg.port}/{DATABASE}",
            aws_endpoint_url=moto.url,
            local_aws_port=moto.port,
            local_pg_port=pg.port,
            local_pg_data=pg.data_dir,
        )
        self.settings = load_data(base)
        return self.settings

    def start_api(self) -> str:
        """The API exactly as ./bin/dev serves it (gunicorn, gthread), with the call counters on."""
        assert self.settings is not None
        port = free_port()
        env = {**app_env(self.settings), "METRICS_ENABLED": "1",
               "CURSOR_SECRET": "bench-cursor-secret-" + self.tmp.name}
        out = open(self.tmp / "api.log", "ab")
        try:
            proc = subprocess.Popen(gunicorn_command(port, workers=WEB_WORKERS, threads=WEB_THREADS),
                                    env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        finally:
            out.close()
        self.api_proc = proc
        self._stoppers.append(lambda: stop_process(proc))
        self.api_url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.api_url}/api/health-check", proc, "api")
        return self.api_url

    def metrics(self) -> dict[str, Any]:
        assert self.api_url is not None
        response = requests.get(f"{self.api_url}/api/_metrics", timeout=10)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        while self._stoppers:
            try:
                self._stoppers.pop()()
            except Exception:  # keep stopping the rest
                log.exception("while stopping")
