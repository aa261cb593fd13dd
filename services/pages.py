"""Cursor pagination shared by patterns A and B: the store's page positions, signed and bound to
who asked for what (domain/cursors.py), so a cursor cannot be forged or replayed elsewhere."""
from __future__ import annotations

from typing import Callable, TypeVar

from domain.conversations import Page
from domain.cursors import Cursors

T = TypeVar("T")


def page_of(cursors: Cursors, scope: str, cursor: str | None,
            read: Callable[[str | None], Page[T]]) -> tuple[list[T], str | None]:
    """One page of `read` and the cursor of the next page, None on the last."""
    after = cursors.decode(scope, cursor) if cursor is not None else None
    page = read(after)
    return page.items, (cursors.encode(scope, page.next_after) if page.next_after else None)
