"""Wakes the event streams this process holds when their users' logs grow: one PostgreSQL
connection per process LISTENs on the channel every append notifies (lib/event_log.py).

A NOTIFY is sent when an append commits, to every listening process: whichever API process or
instance holds a user's stream hears of their new events within milliseconds, with no polling.
A notification is only a nudge: the stream then reads the log from its own position, so a
nudge lost while the connection was down loses nothing. When the connection comes back, every
stream is nudged (it may have missed some), and reads what it missed.

Under gunicorn's gevent workers, threads and waits here are greenlets (psycopg waits the gevent
way when gevent has patched the process), so a thousand idle streams cost a thousand waiting
greenlets and one connection.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

import psycopg

from domain.errors import Busy, Unavailable
from lib.event_log import CHANNEL

log = logging.getLogger(__name__)

# After a failure the listener tries again after 1 s, then 2, 4, ... up to 30 s.
RECONNECT_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 30.0


class Subscription:
    """One stream's doorbell: set when its user's log may have grown."""

    def __init__(self, user_uuid: str):
        self.user_uuid = user_uuid
        self._rung = threading.Event()

    def ring(self) -> None:
        self._rung.set()

    def wait(self, timeout: float) -> bool:
        """Whether it rang within `timeout` seconds (since the last wait returned)."""
        rung = self._rung.wait(timeout)
        self._rung.clear()  # the caller reads the log next: a ring after this is not lost
        return rung


class EventHub:
    """The process's listener and the streams it wakes. Starts listening with the first stream.

    It also holds what streams may take of the process: at most `per_user` streams of one user
    and `per_process` in all (the next is refused), and `reads_at_once` reads of the log at a
    time for all its streams (`reading()`): an event for a user with streams in many processes
    costs each process at most that many pool connections at once, the rest of the pool serving
    requests meanwhile."""

    def __init__(self, connection_url: str, connect: Callable[..., psycopg.Connection] = psycopg.connect,
                 per_user: int = 5, per_process: int = 1000, reads_at_once: int = 2,
                 retry_after: int = 15):
        self._url = connection_url
        self._connect = connect
        self._streams: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.per_user, self.per_process = per_user, per_process
        # how soon a refused page may try again: a closed tab's stream is noticed at its next ping
        self.retry_after = retry_after
        self._reads = threading.BoundedSemaphore(reads_at_once)
        self.closing = threading.Event()
        self.listening = threading.Event()  # the LISTEN is in place (for tests and readiness)

    def check_room(self) -> None:
        """Unavailable (503 busy) when this process holds as many streams as it may."""
        if self.open_streams() >= self.per_process:
            raise self._full()

    def _full(self) -> Unavailable:
        return Unavailable("busy", detail="this server holds all the live streams it may: try again "
                           "in a moment", retry_after=self.retry_after)

    def reading(self) -> threading.BoundedSemaphore:
        """`with hub.reading():` around a stream's read of the log: reads queue for a few slots."""
        return self._reads

    def subscribe(self, user_uuid: str) -> Subscription:
        """A new stream's doorbell; Busy (429 too_many_streams) when the user holds `per_user`
        streams here, Unavailable (503 busy) when the process holds `per_process`."""
        subscription = Subscription(user_uuid)
        with self._lock:
            if sum(len(s) for s in self._streams.values()) >= self.per_process:
                raise self._full()
            if len(self._streams.get(user_uuid, ())) >= self.per_user:
                raise Busy("too_many_streams", detail=f"at most {self.per_user} live streams of one "
                           "user at a time: close one (another tab), or try again", retry_after=self.retry_after)
            self._streams.setdefault(user_uuid, set()).add(subscription)
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="event-listener", daemon=True)
                self._thread.start()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            streams = self._streams.get(subscription.user_uuid)
            if streams is not None:
                streams.discard(subscription)
                if not streams:
                    del self._streams[subscription.user_uuid]

    def open_streams(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._streams.values())

    def close_all(self) -> None:
        """The process is shutting down: every stream ends now (its page reconnects, to another
        process), rather than being cut when the server gives up waiting for it."""
        self.closing.set()
        self._ring(None)

    def _ring(self, user_uuid: str | None) -> None:
        with self._lock:
            if user_uuid is None:
                targets = [s for streams in self._streams.values() for s in streams]
            else:
                targets = list(self._streams.get(user_uuid, ()))
        for subscription in targets:
            subscription.ring()

    def _no_streams_left(self) -> bool:
        """True, and this thread is done, when no stream is open (the next one listens again)."""
        with self._lock:
            if self._streams:
                return False
            self._thread = None
            return True

    def _listen(self) -> None:
        delay = RECONNECT_SECONDS
        while not self.closing.is_set() and not self._no_streams_left():
            try:
                # keepalives: a server that vanished without closing is noticed within a minute
                with self._connect(self._url, autocommit=True, connect_timeout=5, keepalives=1,
                                   keepalives_idle=20, keepalives_interval=5, keepalives_count=4) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = RECONNECT_SECONDS
                    self._ring(None)  # anything appended while we were not listening
                    while not self.closing.is_set():
                        for note in conn.notifies(timeout=5.0):
                            self._ring(note.payload.split(":", 1)[0])
                        if self._no_streams_left():
                            return
            except psycopg.Error as error:
                log.warning("event listener: %s; listening again in %.0f s",
                            str(error).splitlines()[0] if str(error) else type(error).__name__, delay)
                self.closing.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            finally:
                self.listening.clear()
        with self._lock:
            if self._thread is threading.current_thread():
                self._thread = None
