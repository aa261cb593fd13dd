"""Live events: a ticket, and the Server-Sent Events stream it opens."""
from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from routes.http import backend
from services.live_events import Comment, Event, IssueTicket, OpenStream

bp = Blueprint("events", __name__)
# How long a browser's EventSource waits before reconnecting by itself (to a used ticket, which
# answers 401: the page then fetches a new ticket).
RETRY_MS = 2000


@bp.post("/api/events/ticket")
def ticket():
    return jsonify(IssueTicket.run(backend(), request.headers.get("Authorization")))


@bp.get("/api/events")
def events():
    last_event_id = request.args.get("last_event_id") or request.headers.get("Last-Event-ID")
    the_backend = backend()
    user, stream = OpenStream.run(the_backend, request.args.get("ticket"), last_event_id)
    g.caller = user
    # A reader that stops reading must not hold the stream (and what it was sending) for ever:
    # under gunicorn, a send that waits longer than this fails, and the stream ends; the page
    # resumes from its last id. (Without gunicorn's socket, as in Flask's test client, nothing
    # waits on a reader.)
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(the_backend.settings.events_send_seconds)

    def text():
        yield f"retry: {RETRY_MS}\n"
        for item in stream:
            yield server_sent(item)

    response = Response(text(), content_type="text/event-stream")
    response.call_on_close(stream.close)  # its place is given back even if it never started
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy must pass each event on at once
    return response


def server_sent(item: Event | Comment) -> str:
    """One event (or comment) in the text/event-stream format."""
    if isinstance(item, Comment):
        return f": {item.text}\n\n"
    return f"id: {item.id}\nevent: {item.name}\ndata: {item.data}\n\n"
