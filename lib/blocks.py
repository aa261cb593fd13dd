"""Who blocks whom, in PostgreSQL (table `blocks` in db/schema.sql, statements in db/sql/blocks/).

A send asks `between` once: one query of two index lookups, no DynamoDB call. PostgreSQL is the
one place a block lives, so it holds for every API process and instance from the moment its
write commits (no cache to go stale)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from lib.sql_files import template

if TYPE_CHECKING:
    from lib.db import Db

# The most users one user may block: every resource an account holds has a bound.
BLOCKS_PER_USER = 1000


class Between(NamedTuple):
    """Blocks between two users, each way."""
    a_blocks_b: bool
    b_blocks_a: bool


class BlockStore:
    def __init__(self, db: "Db"):
        self.db = db

    def block(self, blocker: str, blocked: str, most: int = BLOCKS_PER_USER) -> dict[str, Any] | None:
        """`blocker` blocks `blocked` (user uuids): {handle, display_name, blocked_at} of the block
        (the existing one when there is one; blocked_at None, and no block, when `blocker` holds
        `most` already), or None when `blocked` is no user."""
        return self.db.query_commit(template("blocks", "block"),
                                    {"blocker": blocker, "blocked": blocked, "most": most})

    def unblock(self, blocker: str, blocked: str) -> None:
        self.db.query_commit(template("blocks", "unblock"), {"blocker": blocker, "blocked": blocked})

    def blocked_by(self, blocker: str) -> list[dict[str, Any]]:
        """Whom `blocker` blocks, most recent first: {handle, display_name, blocked_at}."""
        return self.db.query_array_json(template("blocks", "list"), {"blocker": blocker})

    def between(self, a: str, b: str) -> Between:
        row = self.db.query_object_json(template("blocks", "between"), {"a": a, "b": b}) or {}
        return Between(bool(row.get("a_blocks_b")), bool(row.get("b_blocks_a")))
