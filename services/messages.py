"""Pattern A: a conversation's latest messages, oldest first, for its participants only."""
from __future__ import annotations

from typing import Any

from services import validation
from services.backend import Backend
from services.membership import require_participant
from services.pages import page_of
from lib.ddb import projection
from services.shapes import MESSAGE_ATTRIBUTES, message_json

READ = projection(MESSAGE_ATTRIBUTES)


class Messages:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], message_group_uuid: str, limit: int,
            cursor: str | None = None) -> tuple[list[dict[str, str]], str | None]:
        group = validation.canonical_uuid(message_group_uuid, not_found=True)
        require_participant(backend, group, caller["uuid"])
        items, next_cursor = page_of(
            backend, f"A:{caller['uuid']}:{group}", limit, cursor,
            lambda n, after: backend.ddb.messages_page(group, n, after, **READ))
        # Read newest first (so the page is the latest), shown oldest first.
        return [message_json(i) for i in reversed(items)], next_cursor
