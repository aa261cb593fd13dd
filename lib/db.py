"""PostgreSQL through a bounded psycopg-pool. Parametrised SQL only, read from db/sql/<area>/<name>.sql."""
from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

import psycopg
from psycopg import sql as pg_sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from lib import metrics
from lib.config import ROOT, Settings
from domain.errors import Unavailable

log = logging.getLogger(__name__)
SCHEMA_FILE = ROOT / "db" / "schema.sql"
SEED_FILE = ROOT / "db" / "seed.sql"
# the Lambdas' own database users and their grants (bin/db/lambda-users)
LAMBDA_USERS_FILE = ROOT / "db" / "lambda_users.sql"

Params = Mapping[str, Any] | None
T = TypeVar("T")


class DatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached right now (down, or the pool is exhausted past its timeout)."""

    def __init__(self, *, reason: str):
        super().__init__("database_unavailable", detail="PostgreSQL is unavailable", retry_after=1)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class Watchdog:
    """Cuts the connection of a statement that outlives its deadline.

    PostgreSQL that stops answering (a frozen server, a network path that drops packets) holds a
    client's read for as long as TCP keeps the connection: the server's statement_timeout cannot
    fire, and keepalives are answered by the server's kernel. So the client bounds it itself: one
    thread watches every statement under way and, past its deadline, shuts the connection's
    socket down. The blocked read then fails at once (an OperationalError), and the pool throws
    the broken connection away."""

    def __init__(self) -> None:
        self._watched: dict[int, tuple[float, psycopg.Connection]] = {}
        self._changed = threading.Condition()
        self._next = 0
        self._thread: threading.Thread | None = None
        # When the watching thread wakes by itself next (None: not before it is told). A statement
        # whose deadline comes later needs no wake-up: it is looked at then. With one timeout for
        # every statement that is all of them but the first after a quiet spell, so the thread
        # wakes about once per timeout, not once per statement.
        self._wake_at: float | None = None

    @contextmanager
    def watching(self, conn: psycopg.Connection, deadline: float) -> Iterator[None]:
        with self._changed:
            self._next += 1
            token = self._next
            self._watched[token] = (deadline, conn)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
            elif self._wake_at is None or deadline < self._wake_at:
                self._changed.notify()
        try:
            yield
        finally:
            with self._changed:  # after this, the connection is never cut for this statement
                self._watched.pop(token, None)

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for token, (deadline, conn) in list(self._watched.items()):
                    if deadline <= now:
                        del self._watched[token]
                        self._cut(conn)
                upcoming = min((d for d, _ in self._watched.values()), default=None)
                self._wake_at = upcoming
                self._changed.wait(None if upcoming is None else max(0.0, upcoming - now))

    @staticmethod
    def _cut(conn: psycopg.Connection) -> None:
        log.warning("PostgreSQL did not answer in time: cutting the connection")
        try:
            fd = conn.pgconn.socket
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, psycopg.Error) as error:  # closed meanwhile: nothing left to cut
            log.debug("cutting: %s", error)


class Db:
    """A connection pool with the four helpers the services need. Every use of PostgreSQL, from
    waiting for a connection to the last row, ends within DB_TIMEOUT_SECONDS (DatabaseUnavailable
    after that), whatever the server does."""

    def __init__(self, settings: Settings, open_now: bool = True):
        timeout = settings.db_timeout_seconds
        self.timeout = timeout
        self.watchdog = Watchdog()
        self.pool = ConnectionPool(
            settings.connection_url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            timeout=timeout,  # waiting for a free connection
            # No background reconnection loop with growing back-off: a failed connection is given
            # up at once and a new one is made when a request needs it, so the API is back as
            # soon as PostgreSQL is.
            reconnect_timeout=0,
            open=False,
            kwargs={
                "connect_timeout": max(1, int(timeout)),
                # UTC: times come back as ISO-8601 with +00:00, as the HTTP contract gives them
                "options": f"-c statement_timeout={int(timeout * 1000)} -c timezone=UTC",
                "autocommit": True,
            },
            check=self._check,
            name="cruddur",
        )
        if open_now:
            # wait=False: the app starts even while PostgreSQL is down, and answers 503 until it is up.
            self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    @staticmethod
    def _check(conn: psycopg.Connection) -> None:
        """The pool's check of a connection before handing it out: one that PostgreSQL has
        closed (a restart, a terminated backend) is thrown away and another taken. Without a
        round trip: an idle connection (autocommit, no LISTEN) has nothing to read unless the
        server has said goodbye, with its FATAL message or end-of-file, which select() sees at
        once. psycopg_pool's own check_connection sends a query: a second round trip for every
        statement. A server that went silent without closing is caught by the Watchdog."""
        if conn.closed or conn.broken:
            raise psycopg.OperationalError("the connection is closed")
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
        if readable:
            conn.close()  # so that the pool discards it rather than take it back
            raise psycopg.OperationalError("PostgreSQL closed or is closing the connection")

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection of the pool for one piece of work, all of it (waiting for the connection
        included) held to DB_TIMEOUT_SECONDS; PostgreSQL's failures come out as
        DatabaseUnavailable."""
        deadline = time.monotonic() + self.timeout
        try:
            with self.pool.connection(timeout=self.timeout) as conn, self.watchdog.watching(conn, deadline):
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise DatabaseUnavailable(reason=str(error).splitlines()[0] if str(error) else "unavailable") from error

    def with_connection(self, use: Callable[[psycopg.Connection], T]) -> T:
        """`use` with a pooled connection, for code that speaks SQL itself (lib/event_log.py);
        counted as one query, as each of the helpers below counts its statement."""
        metrics.count("pg_queries")
        with self.connection() as conn:
            return use(conn)

    def _execute(self, sql: str, params: Params, fetch_one: bool) -> Any:
        """The first row (as a dict) when fetch_one, else the number of rows affected."""
        log.debug("sql: %s", sql.strip().splitlines()[0] if sql.strip() else sql)
        metrics.count("pg_queries")
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchone() if fetch_one else cur.rowcount

    def query_value(self, sql: str, params: Params = None) -> Any:
        """The first column of the first row, or None."""
        row = self._execute(sql, params, fetch_one=True)
        return next(iter(row.values())) if row else None

    def query_object_json(self, sql: str, params: Params = None) -> dict[str, Any] | None:
        """The first row as a JSON object (PostgreSQL does the conversion: uuids and times come
        back as strings), or None."""
        wrapped = f"SELECT row_to_json(object_row) FROM ({sql.strip().rstrip(';')}) object_row LIMIT 1"
        return self.query_value(wrapped, params)

    def query_array_json(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        """Every row as a JSON object, in the query's order."""
        wrapped = (f"SELECT COALESCE(json_agg(array_row), '[]'::json) "
                   f"FROM ({sql.strip().rstrip(';')}) array_row")
        return self.query_value(wrapped, params)

    def query_commit(self, sql: str, params: Params = None) -> Any:
        """A write. Returns the first column of RETURNING when the statement has one, else the
        number of rows affected."""
        if "returning" in sql.lower():
            return self.query_value(sql, params)
        return self._execute(sql, params, fetch_one=False)

    def ping(self) -> bool:
        try:
            return self.query_value("SELECT 1") == 1
        except DatabaseUnavailable:
            return False


# -- chores of the scripts and the local stack: the database itself and whole SQL files ---------
def database_name(connection_url: str) -> str:
    return conninfo_to_dict(connection_url).get("dbname") or "postgres"


def _maintenance(connection_url: str) -> psycopg.Connection:
    """A connection to the server's `postgres` database, for CREATE and DROP DATABASE."""
    return psycopg.connect(make_conninfo(connection_url, dbname="postgres"),
                           autocommit=True, connect_timeout=5)


def create_database(connection_url: str) -> bool:
    """Create the database the URL names; False when it exists already."""
    name = database_name(connection_url)
    with _maintenance(connection_url) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(pg_sql.SQL("CREATE DATABASE {}").format(pg_sql.Identifier(name)))
        return True


def drop_database(connection_url: str) -> bool:
    """Drop the database the URL names (its sessions too); False when it did not exist."""
    name = database_name(connection_url)
    with _maintenance(connection_url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        conn.execute(pg_sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pg_sql.Identifier(name)))
        return bool(exists)


def run_sql_file(connection_url: str, path: Path) -> None:
    with psycopg.connect(connection_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(Path(path).read_text())


def setup_database(connection_url: str) -> None:
    """Create the database if missing, load the schema and the seed users (both idempotent)."""
    create_database(connection_url)
    run_sql_file(connection_url, SCHEMA_FILE)
    run_sql_file(connection_url, SEED_FILE)
