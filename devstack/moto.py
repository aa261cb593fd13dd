"""moto's server (DynamoDB, DynamoDB Streams, Cognito on one loopback port), as a child process
running devstack/moto_server.py, moto corrected to behave as the AWS services do
(devstack/moto_corrections/)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devstack import harsh, moto_state
from devstack.processes import answers_200, ensure_port_free, stop_process, wait_until_ready

# The local stack's PostgreSQL, for the sign-up Lambda's pre-sign-up check in moto's process
# (devstack/moto_corrections/cognito.py, correction 9).
SIGN_UP_DATABASE_ENV = "LOCAL_SIGN_UP_DATABASE"

# Moto keeps Cognito pool and client ids stable across restarts with these, so a frontend build
# configured with them keeps working.
MOTO_ENV = {
    "MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY": "HASH",
    "MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY": "HASH",
}


class LocalMoto:
    """moto in server mode (see devstack/moto_corrections/): DynamoDB, DynamoDB Streams and Cognito on
    one loopback port. Harsh as `harshness` says (devstack/harsh.py); by default as the
    environment's LOCAL_HARSH* variables say."""

    def __init__(self, port: int, log_file: Path | None = None,
                 harshness: harsh.Harshness | None = None, state_file: Path | None = None,
                 sign_up_database: str | None = None):
        self.port = port
        # the PostgreSQL the sign-up Lambda's pre-sign-up check reads (moto_corrections/cognito.py, correction 9)
        self.sign_up_database = sign_up_database
        self.log_file = log_file
        self.harshness = harshness
        # where its data is kept across restarts (devstack/moto_state.py); None: in memory only
        self.state_file = state_file
        # where that file went when this start could not read it (and started empty)
        self.state_set_aside: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "LocalMoto":
        ensure_port_free(self.port, "moto")
        aside = moto_state.set_aside(self.state_file) if self.state_file is not None else None
        aside_before = _identity(aside)
        root = str(Path(__file__).resolve().parents[1])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, **MOTO_ENV, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}
        env.pop(moto_state.STATE_ENV, None)
        env.pop(SIGN_UP_DATABASE_ENV, None)
        if self.sign_up_database:
            env[SIGN_UP_DATABASE_ENV] = self.sign_up_database
        if self.state_file is not None:
            env[moto_state.STATE_ENV] = str(self.state_file)
        if self.harshness is not None:
            env = {k: v for k, v in env.items() if not k.startswith("LOCAL_HARSH")}
            env.update(harsh.environment(self.harshness))
        if self.log_file:
            # e.g. .local/ does not exist yet on a fresh clone when PostgreSQL is external
            Path(self.log_file).parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        finally:
            if self.log_file:
                out.close()
        wait_until_ready(answers_200(f"{self.url}/moto-api/"), self.proc, "moto", timeout, self.log_file)
        if aside is not None and _identity(aside) not in (None, aside_before):  # put there just now
            self.state_set_aside = aside
        return self

    def stop(self) -> None:
        stop_process(self.proc)


def _identity(path: Path | None) -> tuple[int, int] | None:
    """Which file is at `path` (a file renamed there is another one), or None."""
    if path is None:
        return None
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_ctime_ns
