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
from lib.ddb import KeyTaken, WriteConflict
from lib.errors import InvalidInput, MalformedRequest, NotFound
from services import validation
from services.backend import Backend
from services.membership import require_participant
from services.shapes import message_json
from services.users_short import by_handle

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
        caller = draft.sender
        validation.handle(handle)
        other = by_handle(backend, handle)
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
        return CreateMessage._first_message(backend, draft, group, other, idempotency)

    @staticmethod
    def _first_message(backend: Backend, draft: "_Draft", group: str, other: dict[str, Any],
                       idempotency: "_Idempotency") -> dict[str, str]:
        """The pair's first message: header, message, then both group rows, each a plain
        conditional put (6 WCU in all; one transaction of the four would cost 10). The order
        is what makes it safe without a transaction:
        - the header first, "unless it exists": of two concurrent first messages only one creates
          the group, the other finds the header and writes a message into the group;
        - then the message (with the Idempotency-Key's record before it, see `_into_group`);
        - then the rows. Should the API stop before them, the message's stream record makes
          the stream Lambda write them, from the header's copy of both participants' names."""
        caller = draft.sender
        members = tuple(sorted([str(caller["uuid"]), other["uuid"]]))
        header = layout.header_item(group, members, draft.created_at,
                                    layout.profiles_of(caller, other), draft.message_uuid)
        try:
            backend.ddb.put_new(header)
        except KeyTaken as taken:
            held = taken.held.get(0, {})
            if held.get("first_message_uuid") != draft.message_uuid:  # else: ours, retried
                # The pair has a conversation already (another, when the header is a migrated
                # week-5 group's alias): this is a message into it.
                actual = held.get("message_group_uuid", group)
                if actual == group:
                    backend.membership.put(group, members)
                else:
                    backend.pairs.put(group, actual)
                return CreateMessage._into_group(backend, draft, actual, idempotency)
        backend.membership.put(group, members)
        response = CreateMessage._into_group(backend, draft, group, idempotency)
        for row in layout.message_rows(caller, other, group, draft.text, response["created_at"]):
            try:
                backend.ddb.put_new(row)
            except KeyTaken:
                # Written already by the stream Lambda (it found the message first), or the
                # owner's row of another conversation holds this microsecond: the Lambda puts
                # this row a microsecond later.
                pass
        return response

    @staticmethod
    def _into_group(backend: Backend, draft: "_Draft", group: str, idempotency: "_Idempotency",
                    named: bool = True) -> dict[str, str]:
        """One message into a group the caller belongs to; the reply names the group when
        `named` (pattern C). With an Idempotency-Key, its record (which message this request
        makes: group, uuid, time) is written first, then the message: a retry that finds the
        record answers from the message, or writes that very message if it is not there yet."""
        group = idempotency.claim(draft, group, named)
        for _ in range(ATTEMPTS):
            message = draft.item(group)
            try:
                backend.ddb.put_new(message)
                return _reply(message, group, named)
            except KeyTaken as taken:
                if draft.landed(taken, position=0):
                    return _reply(message, group, named)
            # Another message holds this microsecond of the group: take a new time, and say so
            # in the record first.
            draft.retime()
            idempotency.record(draft, group, named)
        raise WriteConflict(reason="attempts exhausted")


class _Draft:
    """The message being sent: its sender, text, uuid and time, fixed for the whole request (a
    key found taken by a message with this uuid is this message, written by an attempt whose
    response was lost); a time collision gives it a new time."""

    def __init__(self, sender: dict[str, Any], text: str, message_uuid: str):
        self.sender, self.text, self.message_uuid = sender, text, message_uuid
        self.created_at = layout.now_iso()

    def retime(self) -> None:
        self.created_at = layout.now_iso()

    def item(self, group: str) -> dict[str, Any]:
        return layout.message_item(group, self.sender, self.text, self.created_at, self.message_uuid)

    def landed(self, taken: KeyTaken, position: int) -> bool:
        """Whether the key refused at `position` is held by this very message."""
        return taken.held.get(position, {}).get("message_uuid") == self.message_uuid


class _Idempotency:
    """An Idempotency-Key's record: which message the request makes, written before it (1 WCU,
    a plain conditional put)."""

    def __init__(self, backend: Backend, caller: dict[str, Any], key: str | None,
                 request: dict[str, Any]):
        self.backend = backend
        self.key = layout.idempotency_key(str(caller["uuid"]), key) if key else None
        self.fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def _item(self, draft: _Draft, group: str, named: bool) -> dict[str, Any]:
        # the group under another name than message_group_uuid, the GSI's key: only group rows
        # are in the index
        return {**self.key, "fingerprint": self.fingerprint, "group": group,  # type: ignore[dict-item]
                "message_uuid": draft.message_uuid, "created_at": draft.created_at,
                "named": named, "expires_at": int(time.time()) + layout.IDEMPOTENCY_TTL_SECONDS}

    def claim(self, draft: _Draft, group: str, named: bool) -> str:
        """Write the record unless the key was used already. If it was (and has not expired):
        a different request is refused; the same one is answered from its message when stored,
        else carries on as that message (`draft` takes its uuid and time). Returns the group
        to write into."""
        if self.key is None:
            return group
        try:
            self.backend.ddb.put_new(self._item(draft, group, named))
            return group
        except KeyTaken as taken:
            record = taken.held.get(0) or self.backend.ddb.get(self.key)
        if record is None or layout.expired(record):
            # gone meanwhile (TTL): claim it afresh
            self.backend.ddb.put(self._item(draft, group, named))
            return group
        if record.get("fingerprint") != self.fingerprint:
            raise InvalidInput("idempotency_key_reused",
                               detail="this Idempotency-Key was used for a different request")
        recorded_group = record["group"]
        message = self.backend.ddb.get({"pk": layout.message_pk(recorded_group),
                                        "sk": record["created_at"]})
        if message is not None and message.get("message_uuid") == record["message_uuid"]:
            raise _Replay(_reply(message, recorded_group, bool(record.get("named"))))
        # The first attempt stopped (or is still on its way) between its record and its message:
        # this request writes that message; whichever of the two lands second finds it landed.
        draft.message_uuid, draft.created_at = record["message_uuid"], record["created_at"]
        return recorded_group

    def record(self, draft: _Draft, group: str, named: bool) -> None:
        """Say in the record that the message moved to a new time (a collision)."""
        if self.key is not None:
            self.backend.ddb.put(self._item(draft, group, named))


def _reply(message: dict[str, Any], group: str, named: bool) -> dict[str, str]:
    """The stored message as the POST answers it, naming its group for pattern C."""
    return {**message_json(message), **({"message_group_uuid": group} if named else {})}
