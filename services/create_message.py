"""Patterns C and D: a message to a user (the first one starts the conversation), or into an
existing conversation. Safe to retry with an Idempotency-Key: the store writes in an order that
makes the message exactly-once (lib/conversations/sending.py)."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from domain.contract import message_json
from domain.conversations import Idempotency
from domain.errors import InvalidInput, MalformedRequest
from lib.blocks import BlockCache
from lib.conversations.store import ConversationStore
from lib.users import UserStore
from services import validation
from services.blocks import require_unblocked
from services.membership import require_participant
from services.users_short import other_user


class CreateMessage:
    @staticmethod
    def run(conversations: ConversationStore, users: UserStore, blocks: BlockCache, caller: dict[str, Any],
            body: Any, idempotency_key: str | None = None) -> dict[str, str]:
        """The stored message as the contract gives it; sent by handle (pattern C) with its
        message_group_uuid, into a conversation (pattern D) without (the frontend appends a
        message it gets without one, and reloads the page when it gets one). Refused, with
        nothing stored, while either participant blocks the other."""
        if not isinstance(body, dict):
            raise MalformedRequest("body_invalid", detail="the body must be a JSON object")
        text = validation.message_text(body.get("message"))
        has_handle = body.get("handle") is not None
        has_group = body.get("message_group_uuid") is not None
        if has_handle == has_group:
            raise InvalidInput("recipient_invalid",
                               detail="give exactly one of handle and message_group_uuid")
        request = {"message": text, "handle": body.get("handle"),
                   "message_group_uuid": body.get("message_group_uuid")}
        idempotency = (Idempotency(idempotency_key, hashlib.sha256(
            json.dumps(request, sort_keys=True).encode()).hexdigest()) if idempotency_key else None)
        if has_handle:
            other = other_user(users, caller, body["handle"],
                               InvalidInput("cannot_message_self", detail="you cannot message yourself"))
            require_unblocked(blocks, caller["uuid"], other["uuid"])
            sent = conversations.send_to_user(caller, other, text, idempotency)
        else:
            group = validation.canonical_uuid(body["message_group_uuid"])
            require_participant(conversations, group, caller["uuid"])
            recipient = conversations.other_participant(group, str(caller["uuid"]))
            if recipient is not None:
                require_unblocked(blocks, caller["uuid"], recipient)
            sent = conversations.send_to_group(caller, group, text, idempotency)
        named = {"message_group_uuid": sent.message.message_group_uuid} if sent.named else {}
        return {**message_json(sent.message), **named}
