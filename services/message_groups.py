"""Pattern B: the caller's conversations, most recent first."""
from __future__ import annotations

from typing import Any

from services.backend import Backend
from services.pages import page_of
from services.shapes import group_json


class MessageGroups:
    @staticmethod
    def run(backend: Backend, caller: dict[str, Any], limit: int,
            cursor: str | None = None) -> tuple[list[dict[str, str]], str | None]:
        items, next_cursor = page_of(
            backend, f"B:{caller['uuid']}", limit, cursor,
            lambda n, after: backend.ddb.groups_page(caller["uuid"], n, after))
        return [group_json(i) for i in items], next_cursor
