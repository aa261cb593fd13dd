"""Child processes of the local stack: free ports, waiting for readiness, stopping, and a Stack
that stops whatever was started in reverse order."""
from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


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


def wait_until_ready(check: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float,
                     log_file: Path | None = None) -> None:
    """Poll `check` until it holds. A process that exits meanwhile, or a timeout, is a StackError
    (naming the last line of `log_file`, if any); on timeout the process is stopped."""
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


def answers_200(url: str) -> Callable[[], bool]:
    """A readiness check: `url` answers 200."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    return check


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    """Wait until `url` answers 200 (see wait_until_ready)."""
    wait_until_ready(answers_200(url), proc, what, timeout)


def stat_fields(stat: Path) -> list[str]:
    """The fields of a /proc/<pid>/stat after the command name (which is in parentheses and may
    hold spaces): [0] is the state, [1] the parent, [11] and [12] the user and system CPU in clock
    ticks. OSError when the process has ended."""
    return stat.read_text().rsplit(")", 1)[1].split()


def children_of(parent: int) -> dict[int, list[str]]:
    """The processes whose parent is `parent`, each pid with its `stat_fields`."""
    found: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_fields(stat)
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == parent:
            found[int(stat.parent.name)] = fields
    return found


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Supervised:
    def __init__(self, start: Callable[[], subprocess.Popen]):
        self.start = start
        self.proc = start()
        self.started_at = time.monotonic()
        self.failures = 0  # exits in a row
        self.restart_at: float | None = None


class Stack:
    """What was started, so that it can all be stopped in reverse order whatever happens; and
    the processes to restart, with backoff, when they exit (`supervise`, `tend`)."""

    MAX_BACKOFF_SECONDS = 30.0

    def __init__(self) -> None:
        self._stoppers: list[Callable[[], None]] = []
        self.processes: dict[str, subprocess.Popen] = {}
        self._supervised: dict[str, _Supervised] = {}

    def add(self, name: str, proc: subprocess.Popen | None, stop: Callable[[], None]) -> None:
        """Register `stop` (and `proc`, watched by `dead`). Register before starting, so that a
        component that fails half-way is still stopped."""
        if proc is not None:
            self.processes[name] = proc
        self._stoppers.append(stop)

    def on_stop(self, stop: Callable[[], None]) -> None:
        self._stoppers.append(stop)

    def stop(self) -> None:
        while self._stoppers:
            try:
                self._stoppers.pop()()
            except Exception:  # keep stopping the rest whatever one of them does
                log.exception("while stopping")

    def supervise(self, name: str, start: Callable[[], subprocess.Popen]) -> subprocess.Popen:
        """Start a process that the stack restarts whenever it exits (see `tend`), rather than
        taking everything down; stopped with the stack."""
        entry = self._supervised[name] = _Supervised(start)
        self.processes[name] = entry.proc
        self._stoppers.append(lambda: stop_process(entry.proc))
        return entry.proc

    def tend(self, now: float | None = None) -> list[str]:
        """Restart the supervised processes that exited, each after a backoff that doubles with
        every exit in a row (1 s up to MAX_BACKOFF_SECONDS; a process that ran for a minute
        starts again from 1 s). Returns a line per event, for the log."""
        now = time.monotonic() if now is None else now
        events = []
        for name, entry in self._supervised.items():
            if entry.proc.poll() is None:
                if entry.failures and now - entry.started_at > 60:
                    entry.failures = 0  # a long run forgives the exits before it
                continue
            if entry.restart_at is None:
                entry.failures += 1
                delay = min(2.0 ** (entry.failures - 1), self.MAX_BACKOFF_SECONDS)
                entry.restart_at = now + delay
                events.append(f"{name} exited with code {entry.proc.returncode}; "
                              f"restarting in {delay:.0f}s")
            elif now >= entry.restart_at:
                entry.proc, entry.started_at, entry.restart_at = entry.start(), now, None
                self.processes[name] = entry.proc
                events.append(f"{name} restarted (pid {entry.proc.pid})")
        return events

    def dead(self) -> str | None:
        """A line naming a watched process (not a supervised one) that has exited, else None."""
        for name, proc in self.processes.items():
            if name not in self._supervised and proc.poll() is not None:
                return f"{name} exited with code {proc.returncode}"
        return None


def sigterm_as_keyboard_interrupt() -> None:
    """SIGTERM stops a foreground command the way Ctrl-C does."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
