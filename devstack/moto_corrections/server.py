"""Corrections to moto's server itself: persistent connections (a client's connection serves
request after request, as DynamoDB's does) and CORS for the frontend's origin only (11)."""
from __future__ import annotations

import io
import os
import socket
import threading
from typing import Any, Callable

import moto.server


def frontend_only_cors(create_backend_app: Callable[[str], Any], origin: str) -> Callable[[str], Any]:
    """moto's app factory with CORS for `origin` only, and none on moto's own API (its state,
    passwords included) (correction 11). Every service's app gets it, as moto's global CORS
    gave it: a browser's preflight carries no X-Amz-Target, so moto may route it to any app."""
    from flask_cors import CORS

    def create(service: str) -> Any:
        app = create_backend_app(service)
        if service != "moto_api":
            CORS(app, origins=[origin])
        return app
    return create


class KeepAliveHandler(moto.server.MotoRequestHandler):
    """HTTP/1.1 with persistent connections, so that a client's connection serves request after
    request, as DynamoDB's does.

    werkzeug's handler closes every connection ("Connection: close"), and after each response it
    drains whatever the client sent meanwhile (waiting up to 10 ms for it), which on a kept
    connection would swallow the next request. Each call of a client then pays a new TCP
    connection and, in the API's gevent worker, a name lookup in gevent's thread pool. Here, when
    the body's length is known, the body is read whole before the app runs; werkzeug's drain is
    then pointed at an empty stream and a descriptor that is always at end-of-file, so it returns
    at once and the next request stays in the socket. A chunked body keeps werkzeug's behaviour
    (drain and close)."""
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # the headers and the body leave in two writes: without this, on a kept connection,
        # Nagle's algorithm holds the body until the client's delayed ACK (40 ms)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        self._keep_alive = False
        socket_file, connection = self.rfile, self.connection
        try:
            super().run_wsgi()
        finally:
            self.rfile, self.connection = socket_file, connection

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        if not environ.get("wsgi.input_terminated"):  # a length, or no body
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(length) if length > 0 else b"")
            # what werkzeug's drain will look at, for the rest of this request only
            self.rfile, self.connection = io.BytesIO(), _at_end_of_file()
            self._keep_alive = True
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if (keyword.lower() == "connection" and value.lower() == "close"
                and getattr(self, "_keep_alive", False)):
            return  # werkzeug's unconditional close; a client's own "close" still holds
        super().send_header(keyword, value)


_END_OF_FILE: list[int] = []
_END_OF_FILE_LOCK = threading.Lock()


def _at_end_of_file() -> int:
    """A descriptor that select() always finds readable and that reads nothing (one, shared by
    every connection's thread)."""
    with _END_OF_FILE_LOCK:
        if not _END_OF_FILE:
            read_end, write_end = os.pipe()
            os.close(write_end)
            _END_OF_FILE.append(read_end)
        return _END_OF_FILE[0]


