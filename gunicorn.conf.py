"""gunicorn's settings for the API wherever it is served: ./bin/dev, the tests and the benchmark
(`devstack.gunicorn_command`) and the production image (Dockerfile) all load this file, and give
only the address on the command line. gunicorn runs it with its own loader; the app never imports
it."""
import logging
import os
import re
import resource
import threading
import time

from gunicorn import util


def _at_least_one(name: str, default: int) -> int:
    """A count from the environment; one line, not a trace of this file, when it is not one. (Not
    lib.config.env_int: the benchmark serves the week-5 backend with this file from that
    backend's folder, where `lib` is its own package.)"""
    value = os.environ.get(name) or str(default)
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
        raise SystemExit(f"gunicorn.conf.py: {name} must be a whole number of at least 1, not {value!r}")
    return int(value)


# gevent workers: one greenlet per connection, so clients that send slowly, or stall half-way,
# hold a greenlet each and starve nobody
worker_class = "gevent"
workers = _at_least_one("WEB_WORKERS", 2)
# Each open live-event stream holds a connection for as long as its page is open: a worker holding
# 1,000 of them still has as many again for ordinary requests.
worker_connections = _at_least_one("WEB_CONNECTIONS", 2000)
# no gunicorn access log (the default): the app writes its own line (app.py), and gunicorn would
# format one even for /dev/null
accesslog = None
# no control socket: its default path (~/.gunicorn/gunicorn.ctl) is shared by every gunicorn of
# the user, so two servers would take it from each other
control_socket_disable = True

# What gunicorn refuses before the app sees it: a request line over 4 KiB, headers over its limits,
# a request that is not HTTP. gunicorn answers these with an HTML page; the contract says every
# error body is a JSON array of codes (the frontend calls .map on it).
PROTOCOL_ERROR_CODES = {
    400: "request_malformed",
    403: "request_forbidden",
    414: "request_line_too_long",
    417: "expectation_failed",
    431: "request_headers_too_large",
    501: "transfer_coding_unsupported",
}
DETAIL_MAX = 300  # as the app's X-Error-Detail (routes/http.py)


def protocol_error_response(status: int, reason: str, detail: str) -> bytes:
    """The whole response to a request gunicorn refused: `["<code>"]`, its explanation in
    X-Error-Detail, and the connection closed (gunicorn cannot tell where such a request ends)."""
    body = b'["%s"]' % PROTOCOL_ERROR_CODES.get(status, "internal_error").encode()
    # the detail quotes what the client sent: printable ASCII only, so that it cannot add a header
    detail = re.sub(r"[^\x20-\x7e]", "?", " ".join(detail.split()))[:DETAIL_MAX]
    head = [f"HTTP/1.1 {status} {reason}", "Connection: close", "Content-Type: application/json",
            f"Content-Length: {len(body)}"] + ([f"X-Error-Detail: {detail}"] if detail else [])
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + body


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, protocol_error_response(status_int, reason, mesg))


def _enough_open_files() -> None:
    """Every connection is an open file: raise the soft limit (often 1,024 on a laptop) to what
    the workers' connections need, within the hard limit the system allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = worker_connections + 512  # the pools', the listener's and the log's files besides
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))


def on_starting(server) -> None:
    _enough_open_files()
    # The workers' error path calls gunicorn.util.write_error (workers/base.py, handle_error),
    # which has no setting; replaced here, before the workers are forked.
    util.write_error = write_json_error


class StalledReaders(logging.Filter):
    """A live-event stream whose page stopped reading ends when a send waits past its timeout
    (routes/events.py): gunicorn logs that as a socket error with a trace. It is expected, and
    said here in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], TimeoutError):
            record.msg, record.args, record.exc_info = (
                "a client stopped reading a response (a send waited past its timeout): connection closed", (), None)
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def post_worker_init(worker) -> None:
    """Live event streams never end by themselves: when the worker is told to stop (SIGTERM, a
    deployment), end them at once, so that each page reconnects to a process that stays, instead
    of waiting out the graceful timeout and being cut. The app offers its streams' hub as
    `extensions["live_events"]` (app.py)."""
    worker.log.error_log.addFilter(StalledReaders())
    hub = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("live_events")
    if hub is None:
        return

    def end_streams_on_stop() -> None:
        while worker.alive:
            time.sleep(0.5)
        hub.close_all()

    threading.Thread(target=end_streams_on_stop, name="end-streams-on-stop", daemon=True).start()
