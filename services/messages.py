"""Pattern A: a conversation's latest messages, oldest first, for its participants only."""
from __future__ import annotations

from typing import Any

from services import validation
from services.backend import Backend
from services.membership import require_participant
from services.pages import page_of
from lib.conversations import message_json


class Messages:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], message_group_uuid: str, limit: int,
            cursor: str | None = None) -> tuple[list[dict[str, str]], str | None]:
        group = validation.canonical_uuid(message_group_uuid, not_found=True)
        require_participant(backend, group, caller["uuid"])
        messages, next_cursor = page_of(
            backend, f"A:{caller['uuid']}:{group}", cursor,
            lambda after: backend.conversations.messages(group, limit, after))
        # Read newest first (so the page is the latest), shown oldest first.
        return [message_json(m) for m in reversed(messages)], next_cursor
