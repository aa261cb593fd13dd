"""Live events: a ticket, and the Server-Sent Events stream it opens."""
from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from routes.http import parts
from services.current_user import CurrentUser
from services.live_events import Comment, Event, IssueTicket, OpenStream

bp = Blueprint("events", __name__)
# How long a browser's EventSource waits before reconnecting by itself (to a used ticket, which
# answers 401: the page then fetches a new ticket).
RETRY_MS = 2000


@bp.post("/api/events/ticket")
def ticket():
    app = parts()
    user, trusted_until = CurrentUser.for_a_while(app.tokens, app.users, app.known_users,
                                                  request.headers.get("Authorization"), app.attributes_of)
    return jsonify(IssueTicket.run(app.events, user, trusted_until, app.settings.events_tickets_per_user))


@bp.get("/api/events")
def events():
    last_event_id = request.args.get("last_event_id") or request.headers.get("Last-Event-ID")
    app = parts()
    user, stream = OpenStream.run(app.live, app.events, request.args.get("ticket"), last_event_id,
                                  app.settings.events_stream_seconds, app.settings.events_ping_seconds)
    g.caller = user
    # A reader that stops reading must not hold the stream (and what it was sending) for ever:
    # under gunicorn, a send that waits longer than this fails, and the stream ends; the page
    # resumes from its last id. (Without gunicorn's socket, as in Flask's test client, nothing
    # waits on a reader.)
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(app.settings.events_send_seconds)

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
