"""Direct messages: a caller's conversations (B), one conversation (A), sending (C and D), read
markers and unread counts, and a sender's edits and deletions."""
from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.routing import BaseConverter

from routes.http import caller, json_body, page_response, parts
from services import validation
from services.create_message import CreateMessage
from services.delete_message import DeleteMessage
from services.edit_message import EditMessage
from services.message_groups import MessageGroups
from services.messages import Messages
from services.read_markers import MarkRead, UnreadSummary


class MessageUuid(BaseConverter):
    """A message's uuid in a path: any segment but "read", the read-marker route's, so that a
    PATCH or DELETE of .../read is a 405 as any method a route does not take (the service
    answers a segment that is no uuid with 404 message_not_found)."""
    regex = r"(?!read$)[^/]+"


bp = Blueprint("messages", __name__)
# before the routes below: a blueprint's setup runs in the order it was recorded
bp.record_once(lambda state: state.app.url_map.converters.setdefault("message_uuid", MessageUuid))


@bp.get("/api/message_groups")
def message_groups():
    user = caller()
    limit = validation.limit(request.args.get("limit"))
    app = parts()
    items, next_cursor = MessageGroups.run(app.conversations, app.names, app.cursors, user, limit,
                                           request.args.get("cursor"))
    return page_response(items, next_cursor, limit)


@bp.get("/api/message_groups/unread")
def unread_summary():
    return jsonify(UnreadSummary.run(parts().conversations, caller()))


@bp.get("/api/messages/<message_group_uuid>")
def messages_of_group(message_group_uuid: str):
    user = caller()
    limit = validation.limit(request.args.get("limit"))
    app = parts()
    items, next_cursor = Messages.run(app.conversations, app.names, app.cursors, user, message_group_uuid, limit,
                                      request.args.get("cursor"))
    return page_response(items, next_cursor, limit)


@bp.post("/api/messages")
def create_message():
    user = caller()
    key = validation.idempotency_key(request.headers.get("Idempotency-Key"))
    app = parts()
    return jsonify(CreateMessage.run(app.conversations, app.users, app.blocks, user, json_body(), key))


@bp.post("/api/messages/<message_group_uuid>/read")
def mark_read(message_group_uuid: str):
    user = caller()
    body = json_body() if request.get_data(cache=True).strip() else None
    return jsonify(MarkRead.run(parts().conversations, user, message_group_uuid, body))


@bp.patch("/api/messages/<message_group_uuid>/<message_uuid:message_uuid>")
def edit_message(message_group_uuid: str, message_uuid: str):
    user = caller()
    return jsonify(EditMessage.run(parts().conversations, user, message_group_uuid, message_uuid, json_body()))


@bp.delete("/api/messages/<message_group_uuid>/<message_uuid:message_uuid>")
def delete_message(message_group_uuid: str, message_uuid: str):
    user = caller()
    return jsonify(DeleteMessage.run(parts().conversations, user, message_group_uuid, message_uuid))
