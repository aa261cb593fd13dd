"""Patterns C and D: a message to a user (creating the conversation on the first one), or into an
existing conversation. Safe to retry with an Idempotency-Key."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from botocore.exceptions import ClientError

from lib import ddb as layout
from lib.db import template
from lib.errors import BadRequest, NotFound, Unavailable, Unprocessable
from services import validation
from services.backend import Backend
from services.membership import require_participant

log = logging.getLogger(__name__)

NOT_EXISTS = "attribute_not_exists(pk)"
# Two writes may pick the same microsecond for the same partition; each retry takes a new time.
ATTEMPTS = 5


class _Replay(Exception):
    def __init__(self, response: dict[str, Any]):
        self.response = response


def _cancellation_codes(error: ClientError) -> list[str] | None:
    """The per-operation reasons of a cancelled transaction, or None for any other error."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    return [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]


def _conditional_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class CreateMessage:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], body: Any,
            idempotency_key: str | None = None) -> dict[str, str]:
        """The stored message as the contract gives it, with its message_group_uuid."""
        if not isinstance(body, dict):
            raise BadRequest("body_invalid", detail="the body must be a JSON object")
        text = validation.message_text(body.get("message"))
        has_handle = body.get("handle") is not None
        has_group = body.get("message_group_uuid") is not None
        if has_handle == has_group:
            raise Unprocessable("recipient_invalid",
                                detail="give exactly one of handle and message_group_uuid")
        request = {"message": text, "handle": body.get("handle"),
                   "message_group_uuid": body.get("message_group_uuid")}
        idempotency = _Idempotency(backend, caller, idempotency_key, request)
        try:
            if has_handle:
                return CreateMessage._to_user(backend, caller, body["handle"], text, idempotency)
            group = validation.canonical_uuid(body["message_group_uuid"])
            require_participant(backend, group, caller["uuid"])
            return CreateMessage._into_group(backend, caller, group, text, idempotency)
        except _Replay as replay:
            return replay.response

    @staticmethod
    def _to_user(backend: Backend, caller: dict[str, Any], handle: Any, text: str,
                 idempotency: "_Idempotency") -> dict[str, str]:
        """Pattern C: into the pair's group, creating it with the first message."""
        validation.handle(handle)
        other = backend.db.query_object_json(template("users", "short"), {"handle": handle})
        if other is None:
            raise NotFound("user_not_found", detail="no user with that handle")
        if other["uuid"] == str(caller["uuid"]):
            raise Unprocessable("cannot_message_self", detail="you cannot message yourself")
        group = layout.group_uuid_for(caller["uuid"], other["uuid"])
        if backend.membership.get(group) is not None:
            return CreateMessage._into_group(backend, caller, group, text, idempotency)
        members = tuple(sorted([str(caller["uuid"]), other["uuid"]]))
        for _ in range(ATTEMPTS):
            created_at = layout.now_iso()
            message = layout.message_item(group, caller, text, created_at)
            ddb = backend.ddb
            # Both group rows, the header and the first message in one transaction: a failure
            # leaves nothing half-made, and the header's condition lets only one of two concurrent
            # first messages create the group.
            operations = [
                ddb.put_op(layout.header_item(group, members, created_at), NOT_EXISTS),
                ddb.put_op(layout.group_row(caller["uuid"], other, group, text, created_at), NOT_EXISTS),
                ddb.put_op(layout.group_row(other["uuid"], caller, group, text, created_at), NOT_EXISTS),
                ddb.put_op(message, NOT_EXISTS),
            ]
            response = {**layout.message_json(message), "message_group_uuid": group}
            try:
                ddb.transact(operations + idempotency.operations(response))
            except ClientError as error:
                codes = _cancellation_codes(error)
                if codes is None:
                    raise
                idempotency.check_replay(codes[len(operations):])
                if codes[0] == "ConditionalCheckFailed":
                    # The group exists already: this is a message into it.
                    backend.membership.put(group, members)
                    return CreateMessage._into_group(backend, caller, group, text, idempotency)
                if "TransactionConflict" not in codes and "ConditionalCheckFailed" not in codes:
                    raise
                continue  # a time collision or a concurrent transaction: try again
            backend.membership.put(group, members)
            return response
        raise Unavailable("write_conflict", detail="too many concurrent writes, try again",
                          headers={"Retry-After": "1"})

    @staticmethod
    def _into_group(backend: Backend, caller: dict[str, Any], group: str, text: str,
                    idempotency: "_Idempotency") -> dict[str, str]:
        """Pattern D: one message into a group the caller belongs to."""
        for _ in range(ATTEMPTS):
            message = layout.message_item(group, caller, text, layout.now_iso())
            response = {**layout.message_json(message), "message_group_uuid": group}
            try:
                extra = idempotency.operations(response)
                if extra:
                    backend.ddb.transact([backend.ddb.put_op(message, NOT_EXISTS), *extra])
                else:
                    backend.ddb.put(message, NOT_EXISTS)
                return response
            except ClientError as error:
                codes = _cancellation_codes(error)
                if codes is not None:
                    idempotency.check_replay(codes[1:])
                    continue
                if _conditional_failed(error):
                    continue
                raise
        raise Unavailable("write_conflict", detail="too many concurrent writes, try again",
                          headers={"Retry-After": "1"})


class _Idempotency:
    """An Idempotency-Key's record, written in the same transaction as the message it produced."""

    def __init__(self, backend: Backend, caller: dict[str, Any], key: str | None,
                 request: dict[str, Any]):
        self.backend = backend
        self.key = layout.idempotency_key(str(caller["uuid"]), key) if key else None
        self.fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def operations(self, response: dict[str, str]) -> list[dict[str, Any]]:
        if self.key is None:
            return []
        record = {**self.key, "fingerprint": self.fingerprint, "response": json.dumps(response),
                  "expires_at": int(time.time()) + layout.IDEMPOTENCY_TTL_SECONDS}
        return [self.backend.ddb.put_op(record, NOT_EXISTS)]

    def check_replay(self, codes: list[str]) -> None:
        """After a cancelled transaction: if this key was used already, answer as the first time."""
        if self.key is None or not codes or codes[0] != "ConditionalCheckFailed":
            return
        record = self.backend.ddb.get(self.key)
        if record is None:
            return  # expired in between: write afresh
        if record.get("fingerprint") != self.fingerprint:
            raise Unprocessable("idempotency_key_reused",
                                detail="this Idempotency-Key was used for a different request")
        raise _Replay(json.loads(record["response"]))
