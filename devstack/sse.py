"""A Server-Sent Events client for the tests and the benchmark, reading a stream as a browser's
EventSource does (the text/event-stream format: `field: value` lines, a blank line ends an event,
`:` a comment). Each event is stamped with the moment it was read (`at`, time.monotonic())."""
from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests


@dataclass
class Received:
    id: str | None
    event: str
    data: Any
    at: float = 0.0


@dataclass
class EventStream:
    """An open stream: events arrive in `events` (a queue) as they are read; comments are kept."""
    response: requests.Response
    events: "queue.Queue[Received | None]" = field(default_factory=queue.Queue)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def open(cls, base_url: str, ticket: str, last_event_id: str | None = None,
             headers: dict[str, str] | None = None) -> "EventStream":
        params = {"ticket": ticket, **({"last_event_id": last_event_id} if last_event_id else {})}
        response = requests.get(f"{base_url}/api/events", params=params, headers=headers or {},
                                stream=True, timeout=(5, 120))
        stream = cls(response)
        if response.status_code == 200:
            threading.Thread(target=stream._read, daemon=True).start()
        return stream

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line == "":
                    if "data" in fields or "event" in fields:
                        data = fields.get("data", "")
                        self.events.put(Received(fields.get("id"), fields.get("event", "message"),
                                                 json.loads(data) if data else None, time.monotonic()))
                    fields = {}
                elif line.startswith(":"):
                    self.comments.append(line[1:].strip())
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "retry":
                        self.retry = int(value)
                    else:
                        fields[name] = value
        except (requests.RequestException, OSError, AttributeError):
            pass  # closed by the test
        finally:
            self.ended.set()
            self.events.put(None)

    def take(self, count: int, timeout: float = 15,
             where: Callable[[Received], bool] = lambda e: True) -> list[Received]:
        """The next `count` events that `where` accepts (others are dropped), or fewer at timeout."""
        found: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event is None:
                break
            if where(event):
                found.append(event)
        return found

    def drain(self, quiet: float = 1.0) -> list[Received]:
        """Every event that arrives until none has for `quiet` seconds."""
        found = []
        while True:
            try:
                event = self.events.get(timeout=quiet)
            except queue.Empty:
                return found
            if event is None:
                return found
            found.append(event)

    def close(self) -> None:
        self.response.close()
