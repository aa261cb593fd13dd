"""Patterns C and D: a message to a user (creating the conversation on the first one), or into an
existing conversation. Safe to retry with an Idempotency-Key."""
from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import Any

from lib import ddb as layout
from lib.db import template
from lib.ddb import KeyTaken, WriteConflict
from lib.errors import InvalidInput, MalformedRequest, NotFound
from services import validation
from services.backend import Backend
from services.membership import require_participant
from services.shapes import message_json

log = logging.getLogger(__name__)

# Two writes may pick the same microsecond for the same partition; each retry takes a new time.
ATTEMPTS = 5


class _Replay(Exception):
    def __init__(self, response: dict[str, Any]):
        self.response = response


class CreateMessage:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], body: Any,
            idempotency_key: str | None = None) -> dict[str, str]:
        """The stored message as the contract gives it; sent by handle (pattern C) with its
        message_group_uuid, into a conversation (pattern D) without (the frontend appends a
        message it gets without one, and reloads the page when it gets one)."""
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
        idempotency = _Idempotency(backend, caller, idempotency_key, request)
        # One message, one uuid, whatever is retried: a key found taken by an item with this uuid
        # is this message, written by an attempt whose response was lost (the SDK retried it).
        draft = _Draft(caller, text, str(uuid.uuid4()))
        try:
            if has_handle:
                return CreateMessage._to_user(backend, draft, body["handle"], idempotency)
            group = validation.canonical_uuid(body["message_group_uuid"])
            require_participant(backend, group, caller["uuid"])
            return CreateMessage._into_group(backend, draft, group, idempotency, named=False)
        except _Replay as replay:
            return replay.response

    @staticmethod
    def _to_user(backend: Backend, draft: "_Draft", handle: Any,
                 idempotency: "_Idempotency") -> dict[str, str]:
        """Pattern C: into the pair's group, creating it with the first message."""
        caller, text = draft.sender, draft.text
        validation.handle(handle)
        other = backend.db.query_object_json(template("users", "short"), {"handle": handle})
        if other is None:
            raise NotFound("user_not_found", detail="no user with that handle")
        if other["uuid"] == str(caller["uuid"]):
            raise InvalidInput("cannot_message_self", detail="you cannot message yourself")
        group = layout.group_uuid_for(caller["uuid"], other["uuid"])
        known = backend.pairs.get(group) or (group if backend.membership.get(group) else None)
        if known is None and not backend.layout_current():
            # a table the week-5 backend wrote: the pair may have a conversation under a random
            # uuid; never start a second one
            known = backend.ddb.conversation_between(caller["uuid"], other["uuid"])
            if known is not None:
                backend.pairs.put(group, known)
        if known is not None:
            return CreateMessage._into_group(backend, draft, known, idempotency)
        members = tuple(sorted([str(caller["uuid"]), other["uuid"]]))
        for _ in range(ATTEMPTS):
            message = draft.item(group)
            created_at = message["sk"]
            # The header, both group rows and the first message together: a failure leaves
            # nothing half-made, and the header's "unless it exists" lets only one of two
            # concurrent first messages create the group.
            items = [
                layout.header_item(group, members, created_at),
                layout.group_row(caller["uuid"], other, group, text, created_at),
                layout.group_row(other["uuid"], caller, group, text, created_at),
                message,
            ]
            response = {**message_json(message), "message_group_uuid": group}
            try:
                backend.ddb.put_all_new(items + idempotency.records(response))
            except KeyTaken as taken:
                if draft.landed(taken, position=len(items) - 1):
                    backend.membership.put(group, members)
                    return response
                idempotency.check_replay(taken, first=len(items))
                if 0 in taken.positions:
                    # The pair has a conversation already: this is a message into it (another,
                    # when the header is a migrated week-5 group's alias).
                    actual = taken.held.get(0, {}).get("message_group_uuid", group)
                    if actual == group:
                        backend.membership.put(group, members)
                    else:
                        backend.pairs.put(group, actual)
                    return CreateMessage._into_group(backend, draft, actual, idempotency)
                continue  # a time collision: try again with a new time
            except WriteConflict:
                continue  # a concurrent transaction on the same keys: try again
            backend.membership.put(group, members)
            return response
        raise WriteConflict(reason="attempts exhausted")

    @staticmethod
    def _into_group(backend: Backend, draft: "_Draft", group: str, idempotency: "_Idempotency",
                    named: bool = True) -> dict[str, str]:
        """One message into a group the caller belongs to; the reply names the group when
        `named` (pattern C)."""
        for _ in range(ATTEMPTS):
            message = draft.item(group)
            response = {**message_json(message), **({"message_group_uuid": group} if named else {})}
            records = idempotency.records(response)
            try:
                if records:
                    backend.ddb.put_all_new([message, *records])
                else:
                    backend.ddb.put_new(message)
                return response
            except KeyTaken as taken:
                if draft.landed(taken, position=0):
                    return response
                idempotency.check_replay(taken, first=1)
            except WriteConflict:
                pass
        raise WriteConflict(reason="attempts exhausted")


class _Draft:
    """The message being sent: its sender, text and uuid, fixed for the whole request; each
    attempt gives it a new time."""

    def __init__(self, sender: dict[str, Any], text: str, message_uuid: str):
        self.sender, self.text, self.message_uuid = sender, text, message_uuid

    def item(self, group: str) -> dict[str, Any]:
        return layout.message_item(group, self.sender, self.text, layout.now_iso(), self.message_uuid)

    def landed(self, taken: KeyTaken, position: int) -> bool:
        """Whether the key refused at `position` is held by this very message."""
        return taken.held.get(position, {}).get("message_uuid") == self.message_uuid


class _Idempotency:
    """An Idempotency-Key's record, written together with the message it produced."""

    def __init__(self, backend: Backend, caller: dict[str, Any], key: str | None,
                 request: dict[str, Any]):
        self.backend = backend
        self.key = layout.idempotency_key(str(caller["uuid"]), key) if key else None
        self.fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def records(self, response: dict[str, str]) -> list[dict[str, Any]]:
        if self.key is None:
            return []
        return [{**self.key, "fingerprint": self.fingerprint, "response": json.dumps(response),
                 "expires_at": int(time.time()) + layout.IDEMPOTENCY_TTL_SECONDS}]

    def check_replay(self, taken: KeyTaken, first: int) -> None:
        """After a refused write whose record stood at position `first`: if this key was used
        already, answer as the first time."""
        if self.key is None or first not in taken.positions:
            return
        record = self.backend.ddb.get(self.key)
        if record is None or layout.expired(record):
            return  # gone, or past its expiry (TTL deletes late): write afresh
        if record.get("fingerprint") != self.fingerprint:
            raise InvalidInput("idempotency_key_reused",
                               detail="this Idempotency-Key was used for a different request")
        raise _Replay(json.loads(record["response"]))
