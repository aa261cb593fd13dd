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
    user, stream = OpenStream.run(backend(), request.args.get("ticket"), last_event_id)
    g.caller = user

    def text():
        yield f"retry: {RETRY_MS}\n"
        for item in stream:
            yield server_sent(item)

    response = Response(text(), content_type="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy must pass each event on at once
    return response


def server_sent(item: Event | Comment) -> str:
    """One event (or comment) in the text/event-stream format."""
    if isinstance(item, Comment):
        return f": {item.text}\n\n"
    return f"id: {item.id}\nevent: {item.name}\ndata: {item.data}\n\n"
