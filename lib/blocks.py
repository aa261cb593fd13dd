"""Who blocks whom, in PostgreSQL (table `blocks` in db/schema.sql, statements in db/sql/blocks/),
and what each API process remembers of it (`BlockCache`).

A send asks `between` once, answered from the process's memory while it listens for every
change, else by one query: never a DynamoDB call. A block commits with a NOTIFY, so it holds for
every API process and instance within milliseconds of its answer, and within a second however a
process schedules its listening (FRESH_SECONDS)."""
from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import psycopg

from lib.cache import Cache
from lib.sql_files import template

if TYPE_CHECKING:
    from lib.db import Db

log = logging.getLogger(__name__)

# The most users one user may block: every resource an account holds has a bound.
BLOCKS_PER_USER = 1000


class Between(NamedTuple):
    """Blocks between two users, each way."""
    a_blocks_b: bool
    b_blocks_a: bool


class BlockStore:
    def __init__(self, db: "Db"):
        self.db = db

    def block(self, blocker: str, blocked: str, most: int = BLOCKS_PER_USER) -> dict[str, Any] | None:
        """`blocker` blocks `blocked` (user uuids): {handle, display_name, blocked_at} of the block
        (the existing one when there is one; blocked_at None, and no block, when `blocker` holds
        `most` already), or None when `blocked` is no user."""
        return self.db.query_commit(template("blocks", "block"),
                                    {"blocker": blocker, "blocked": blocked, "most": most})

    def unblock(self, blocker: str, blocked: str) -> None:
        self.db.query_commit(template("blocks", "unblock"), {"blocker": blocker, "blocked": blocked})

    def blocked_by(self, blocker: str) -> list[dict[str, Any]]:
        """Whom `blocker` blocks, most recent first: {handle, display_name, blocked_at}."""
        return self.db.query_array_json(template("blocks", "list"), {"blocker": blocker})

    def between(self, a: str, b: str) -> Between:
        row = self.db.query_object_json(template("blocks", "between"), {"a": a, "b": b}) or {}
        return Between(bool(row.get("a_blocks_b")), bool(row.get("b_blocks_a")))

    def blocked_sets(self, users: list[str]) -> dict[str, frozenset[str]]:
        """Whom each of `users` blocks (an empty set for who blocks nobody), in one query."""
        rows = self.db.query_array_json(template("blocks", "blocked_sets"), {"users": list(users)})
        found = {row["blocker"]: frozenset(row["blocked"]) for row in rows}
        return {user: found.get(user, frozenset()) for user in users}


# -- a per-process cache of who blocks whom, kept current across processes -------------------------
# The channel every block and unblock notifies (db/sql/blocks/), with the blocker's uuid.
CHANNEL = "cruddur_blocks"
# What one process remembers: the blocks of this many users at most, each of at most this many
# blocks (a longer list is asked for each time): a bound on memory whatever users do.
CACHED_USERS = 1000
CACHED_BLOCKS_PER_USER = 100
RECONNECT_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 30.0
# The listening wakes this often even when nothing is said, and a process answers from memory only
# while its last wake is this recent: a notice committed a second before a send has been read by
# then, even when the listening was kept from running (a busy process), or the send asks
# PostgreSQL. So a block holds everywhere within the contract's second, whatever the scheduling.
POLL_SECONDS = 0.25
FRESH_SECONDS = 0.5
WARN_AFTER_SECONDS = 8.0  # the fourth failure in a row (1 + 2 + 4 s of trying): worth a warning


class _Notices:
    """The process's one LISTEN on CHANNEL for a database: it tells every BlockCache of that
    database which user's blocks changed, and whether it is listening at all (a cache answers
    only while it is: a notice missed while the connection was down would leave it stale). On
    every (re)connection the caches forget everything."""

    def __init__(self, url: str, connect: Callable[..., Any]):
        self.url, self.connect = url, connect
        self.caches: "weakref.WeakSet[BlockCache]" = weakref.WeakSet()
        self.listening = threading.Event()
        self.heard_at = 0.0  # time.monotonic() when the listening last read what was said
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def current(self) -> bool:
        """Whether what the caches remember may be trusted: listening, and recently read."""
        return self.listening.is_set() and time.monotonic() - self.heard_at <= FRESH_SECONDS

    def join(self, cache: "BlockCache") -> None:
        with self.lock:
            self.caches.add(cache)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="block-notices", daemon=True)
                self.thread.start()

    def _tell(self, user: str | None) -> None:
        for cache in list(self.caches):
            cache.forget(user)

    def _run(self) -> None:
        delay = RECONNECT_SECONDS
        while not _CLOSING.is_set():
            try:
                with self.connect(self.url, autocommit=True, connect_timeout=5, keepalives=1,
                                  keepalives_idle=20, keepalives_interval=5, keepalives_count=4) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._tell(None)  # whatever changed while nobody listened
                    self.heard_at = time.monotonic()
                    self.listening.set()
                    delay = RECONNECT_SECONDS
                    while True:
                        for note in conn.notifies(timeout=POLL_SECONDS):
                            self._tell(note.payload)
                        self.heard_at = time.monotonic()
            except Exception as error:  # psycopg's, and a connect that cannot even start
                self.listening.clear()
                self._tell(None)
                if _CLOSING.is_set():
                    return
                # sends ask PostgreSQL meanwhile: a short outage is no warning, a long one is
                log.log(logging.WARNING if delay >= WARN_AFTER_SECONDS else logging.INFO,
                        "block notices: %s; listening again in %.0f s",
                        str(error).splitlines()[0] if str(error) else type(error).__name__, delay)
                _CLOSING.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)


_NOTICES: dict[str, _Notices] = {}
# The interpreter is exiting: the listening ends quietly (its database may be gone before it).
_CLOSING = threading.Event()
atexit.register(_CLOSING.set)
_NOTICES_LOCK = threading.Lock()


def _notices(url: str, connect: Callable[..., Any]) -> _Notices:
    with _NOTICES_LOCK:
        if url not in _NOTICES:
            _NOTICES[url] = _Notices(url, connect)
        return _NOTICES[url]


class BlockCache:
    """BlockStore, with `between` answered from what this process remembers of whom each user
    blocks, while the process listens for every change (one connection per process, shared by
    every cache of the database). A block or unblock commits with its notice, every process
    forgets that user's blocks within milliseconds, and the next send asks PostgreSQL again: a
    send costs no query while nothing changed. Not listening (not yet, or the connection
    dropped, or its listening has not read what was said in the last half second), every send asks
    PostgreSQL."""

    def __init__(self, store: BlockStore, connection_url: str, connect: Callable[..., Any] = psycopg.connect):
        self.store = store
        self._known: Cache[frozenset[str]] = Cache(max_size=CACHED_USERS)
        self._generation = 0  # one more at every notice: a load that saw one begin is not kept
        self._lock = threading.Lock()
        self._notices = _notices(connection_url, connect)

    # the store's own operations, as they are
    def block(self, blocker: str, blocked: str, most: int = BLOCKS_PER_USER) -> dict[str, Any] | None:
        return self.store.block(blocker, blocked, most)

    def unblock(self, blocker: str, blocked: str) -> None:
        self.store.unblock(blocker, blocked)

    def blocked_by(self, blocker: str) -> list[dict[str, Any]]:
        return self.store.blocked_by(blocker)

    def between(self, a: str, b: str) -> Between:
        self._notices.join(self)
        if not self._notices.current():
            return self.store.between(a, b)
        with self._lock:
            generation = self._generation
        sets = {user: self._known.get(user) for user in (a, b)}
        missing = [user for user, blocked in sets.items() if blocked is None]
        if missing:
            loaded = self.store.blocked_sets(missing)
            with self._lock:
                keep = generation == self._generation and self._notices.current()
            for user in missing:
                sets[user] = loaded[user]
                if keep and len(loaded[user]) <= CACHED_BLOCKS_PER_USER:
                    self._known.put(user, loaded[user])
        return Between(b in sets[a], a in sets[b])  # type: ignore[operator]

    def forget(self, user: str | None) -> None:
        """What this process remembers of `user`'s blocks (everyone's, for None) is out of date."""
        with self._lock:
            self._generation += 1
            if user is None:
                self._known.clear()
            else:
                self._known.pop(user)
