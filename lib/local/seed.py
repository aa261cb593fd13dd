"""The seeded conversation of the local stack (db/seed/conversation.txt): two seeded users'
messages spread over the last 400 days, written with batch writes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from lib import ddb as layout
from lib.config import ROOT
from lib.db import Db, template
from lib.ddb import Ddb

CONVERSATION_FILE = ROOT / "db" / "seed" / "conversation.txt"
SPAN_DAYS = 400


class SeedError(ValueError):
    """The seed file or the users it names are not as the seed needs them."""


def read_conversation(path: Path = CONVERSATION_FILE) -> list[tuple[str, str]]:
    """(handle, text) per line of the conversation file."""
    lines = []
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        handle, _, text = raw.partition(":")
        lines.append((handle.strip(), text.strip()))
    return lines


def participants(conversation: list[tuple[str, str]]) -> list[str]:
    handles = sorted({h for h, _ in conversation})
    if len(handles) != 2:
        raise SeedError(f"the seed conversation must have two participants, not {handles}")
    return handles


def user_by_handle(db: Db, handle: str) -> dict[str, Any]:
    user = db.query_object_json(template("users", "short"), {"handle": handle})
    if user is None:
        raise SeedError(f"no user with handle {handle!r} in PostgreSQL")
    return user


def seed_group(db: Db, path: Path = CONVERSATION_FILE) -> str:
    """The message_group_uuid of the seeded conversation."""
    a, b = (user_by_handle(db, h) for h in participants(read_conversation(path)))
    return layout.group_uuid_for(a["uuid"], b["uuid"])


def seed_items(users: dict[str, dict[str, Any]], conversation: list[tuple[str, str]],
               end: datetime, span_days: int = SPAN_DAYS) -> list[dict[str, Any]]:
    """The header, both group rows and every message of a two-person conversation, the messages
    spread evenly over `span_days` up to `end`."""
    a, b = (users[h] for h in participants(conversation))
    group = layout.group_uuid_for(a["uuid"], b["uuid"])
    step = timedelta(days=span_days) / max(1, len(conversation) - 1)
    start = end - timedelta(days=span_days)
    messages = [layout.message_item(group, users[h], text, layout.iso(start + i * step))
                for i, (h, text) in enumerate(conversation)]
    last = messages[-1]
    return [
        layout.header_item(group, [a["uuid"], b["uuid"]], messages[0]["sk"]),
        layout.group_row(a["uuid"], b, group, last["message"], last["sk"]),
        layout.group_row(b["uuid"], a, group, last["message"], last["sk"]),
        *messages,
    ]


def seed(ddb: Ddb, db: Db, force: bool = False, on_progress: Callable[[int], None] | None = None,
         path: Path = CONVERSATION_FILE) -> tuple[int, int]:
    """Write the seed conversation unless it is there already. Returns (items, calls)."""
    conversation = read_conversation(path)
    users = {h: user_by_handle(db, h) for h in participants(conversation)}
    items = seed_items(users, conversation, datetime.now(timezone.utc) - timedelta(hours=1))
    if not force and ddb.get(layout.header_key(items[1]["message_group_uuid"])):
        return 0, 0
    return len(items), ddb.batch_write(items, on_progress=on_progress)
