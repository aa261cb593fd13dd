"""One page of a partition, newest first: the one place a page is read, for a user's conversations
(pattern B) and a conversation's messages (pattern A), where deleted messages are left out.

The filter is applied here, to the items a Query returns, rather than sent to DynamoDB as a
FilterExpression: DynamoDB charges for the items a filter drops all the same, and its Limit counts
them, so a server-side filter saves only the few bytes of the tombstones, and costs every request
the building and parsing of the expression (about a tenth of a millisecond of CPU on a page). A
page of 20 that meets 5 deleted messages holds 15 either way. So a filtered page is read on from
where the last read stopped until it holds what was asked for (or the partition ends). Each later
read asks for at least FILL_READ items, so that a long run of deleted messages costs a few reads,
not one per message, and at most MAX_READS reads make one page: past that, the page is given
shorter, with a cursor where reading stopped, so that no request's cost grows with how much was
deleted. A cursor is a position (an sk),
which a deletion does not move: cursors made before it stay valid.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from domain.conversations import Page
from lib.ddb import Ddb

FILL_READ = 25
MAX_READS = 8


def newest_first(table: Ddb, pk: str, limit: int, after: str | None = None, *,
                 attributes: Iterable[str] | None = None, where: Mapping[str, Any] | None = None,
                 up_to: str | None = None, consistent: bool = False,
                 next_page: bool = True) -> Page[dict[str, Any]]:
    """Up to `limit` items of the partition, newest first, after the sk `after` and at or before
    `up_to`, of those only the ones whose attributes match `where` (None: absent); `next_after`
    names where the next page starts, None when no item follows (without `next_page`, where the
    reading stopped: the caller wants these items only)."""
    items: list[dict[str, Any]] = []
    attributes = tuple(attributes) if attributes else None
    if where and attributes:  # read what the filter looks at
        attributes += tuple(a for a in where if a not in attributes)
    # One item more than asked for, so that a next page is named only when one follows.
    enough = limit + 1 if next_page else limit
    for reads in range(1, MAX_READS + 1):
        wanted = enough - len(items)
        # A filtered first read asks for one more: the newest item is often the one just deleted.
        first = wanted + 1 if where else wanted
        page = table.query(pk, limit=first if reads == 1 else max(wanted, FILL_READ), newest_first=True,
                           after_sk=after, sk_to=up_to, consistent=consistent, attributes=attributes)
        items += [item for item in page.items if _matches(item, where)] if where else page.items
        if len(items) >= enough:
            return Page(items[:limit], items[limit - 1]["sk"] if next_page else page.next_sk)
        if page.next_sk is None:
            return Page(items, None)
        after = page.next_sk
    return Page(items, after)  # read enough for one request: the rest on the next page


def _matches(item: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    return all((name not in item) if value is None else item.get(name) == value for name, value in where.items())
