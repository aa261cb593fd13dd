"""The bootcamp's week-5 backend, served beside this one by `./bin/bench --bootcamp DIR` so that
issue 14's "CPU per request ≤ 0.30 of the bootcamp backend's" is measured in the same run: same
PostgreSQL, same moto (the same table), same gunicorn settings (devstack.gunicorn_command), the
same requests in the same interleaved slices.

Its code is not part of this project. DIR is the `backend-flask` folder of the bootcamp repository
at the week-5 frontend's commit, with a Python environment that runs it (by default DIR/.venv;
docs/performance.md says how to make one). The only thing changed is the address of the pool's
JWKS, which its verifier fetches from AWS (bench/week5/week5_app.py). Its own telemetry exporter is
switched off with OTEL_SDK_DISABLED: with no collector to reach it would only add retries, and
without it the comparison is the stricter one.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lib.cognito_jwt_token import jwks_url
from lib.config import ROOT, Settings
from devstack import (Stack, StackError, api_env, children_of, free_port, gunicorn_command,
                       stop_process, wait_http)
from devstack.processes import stat_fields

ENTRY = ROOT / "bench" / "week5"
READY_PATH = "/api/activities/notifications"  # week 5 has no health check; this answers 200 offline
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def python_of(directory: Path, python: str | None) -> str:
    """The interpreter that runs the backend: `python`, else DIR/.venv's."""
    chosen = Path(python) if python else directory / ".venv" / "bin" / "python"
    if not chosen.exists():
        raise SystemExit(f"bench: no Python for the bootcamp backend at {chosen} "
                         "(--bootcamp-python; see docs/performance.md)")
    return str(chosen)


def _cpu_seconds(fields: list[str]) -> float:
    """User + system CPU of a process, from its `stat_fields`."""
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu_seconds(parent: int) -> float:
    """User + system CPU of `parent`'s child processes (gunicorn's workers), from /proc."""
    return sum(_cpu_seconds(fields) for fields in children_of(parent).values())


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of the process `pid` itself, from /proc."""
    return _cpu_seconds(stat_fields(Path(f"/proc/{pid}/stat")))


class Bootcamp:
    """The week-5 backend under gunicorn (one gevent worker, as the benchmark serves this API)."""

    def __init__(self, directory: Path, python: str | None = None) -> None:
        self.directory = directory.resolve()
        if not (self.directory / "app.py").exists():
            raise SystemExit(f"bench: {self.directory} has no app.py (--bootcamp: the week-5 backend-flask)")
        self.python = python_of(self.directory, python)
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    def start(self, settings: Settings, stack: Stack, workers: int, log_file: Path) -> str:
        port = free_port()
        env = {**api_env(settings),
               "PYTHONPATH": str(ENTRY),
               "BENCH_JWKS_URL": jwks_url(settings),
               "BACKEND_URL": f"http://127.0.0.1:{port}",
               "OTEL_SDK_DISABLED": "true",
               "PYTHONUNBUFFERED": "1"}
        with open(log_file, "ab") as out:
            self.proc = subprocess.Popen(
                gunicorn_command(port, workers, python=self.python, chdir=self.directory,
                                 app="week5_app:app"),
                # started in DIR: `python -m` puts the working directory on sys.path, and this
                # project's regular packages would win over its namespace ones (services/, lib/)
                cwd=self.directory, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        proc = self.proc
        stack.add("bootcamp", proc, lambda: stop_process(proc))
        self.url = f"http://127.0.0.1:{port}"
        try:
            wait_http(self.url + READY_PATH, proc, "bootcamp backend", timeout=60)
        except StackError as error:
            tail = log_file.read_text(errors="replace")[-3000:]
            raise StackError(f"{error}; its output ends:\n{tail}") from error
        return self.url

    def cpu_seconds(self) -> float:
        """Its workers' CPU so far (the master only supervises)."""
        assert self.proc is not None
        return children_cpu_seconds(self.proc.pid)
