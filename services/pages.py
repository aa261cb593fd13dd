"""Cursor pagination shared by patterns A and B."""
from __future__ import annotations

from typing import Any, Callable

from lib.ddb import Page
from services.backend import Backend


def page_of(backend: Backend, scope: str, limit: int, cursor: str | None,
            query: Callable[..., Page]) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `query` (newest first) and the cursor of the next page, None on the last.

    One item more than asked for is read, so that a next cursor is given only when something
    really follows."""
    after = backend.cursors.decode(scope, cursor) if cursor is not None else None
    page = query(limit + 1, after)
    items = page.items[:limit]
    more = len(page.items) > limit
    return items, (backend.cursors.encode(scope, items[-1]["sk"]) if more else None)
