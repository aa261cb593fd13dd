"""The seeded conversation of the local stack (db/seed/conversation.txt): two seeded users'
messages spread over the last 400 days, written with batch writes.

Writing it again writes nothing twice: each message's uuid derives from the group and its place
in the file, its time from the messages already there (or, the first time, from now), and a
participant's group row is written only where they have none. The header goes last, so that a
seed cut short is finished by the next run rather than taken for done."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from domain import times
from lib.conversations import layout
from lib.conversations.rows import group_rows
from lib.config import ROOT
from lib.db import Db
from lib.users import UserStore
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
    user = UserStore(db).by_handle(handle)
    if user is None:
        raise SeedError(f"no user with handle {handle!r} in PostgreSQL")
    return user


def seed_group(db: Db, path: Path = CONVERSATION_FILE) -> str:
    """The message_group_uuid of the seeded conversation."""
    a, b = (user_by_handle(db, h) for h in participants(read_conversation(path)))
    return layout.group_uuid_for(a["uuid"], b["uuid"])


def step_of(conversation: list[tuple[str, str]], span_days: int = SPAN_DAYS) -> timedelta:
    return timedelta(days=span_days) / max(1, len(conversation) - 1)


def message_uuid(group: str, position: int) -> str:
    """The uuid of the seed's message at `position`: the same on every run."""
    return str(uuid.uuid5(uuid.UUID(group), f"seed message {position}"))


def seed_items(users: dict[str, dict[str, Any]], conversation: list[tuple[str, str]],
               end: datetime, span_days: int = SPAN_DAYS) -> list[dict[str, Any]]:
    """The header, both group rows and every message of a two-person conversation, the messages
    spread evenly over `span_days` up to `end`."""
    a, b = (users[h] for h in participants(conversation))
    group = layout.group_uuid_for(a["uuid"], b["uuid"])
    step = step_of(conversation, span_days)
    start = end - timedelta(days=span_days)
    messages = [layout.message_item(group, users[h], text, times.iso(start + i * step),
                                    message_uuid(group, i))
                for i, (h, text) in enumerate(conversation)]
    last = messages[-1]
    return [
        layout.header_item(group, [a["uuid"], b["uuid"]], messages[0]["sk"], layout.profiles_of(a, b)),
        layout.group_row(a["uuid"], b, group, last["message"], last["sk"]),
        layout.group_row(b["uuid"], a, group, last["message"], last["sk"]),
        *messages,
    ]


def seed(ddb: Ddb, db: Db, force: bool = False, on_progress: Callable[[int], None] | None = None,
         path: Path = CONVERSATION_FILE) -> tuple[int, int]:
    """Write what is missing of the seed conversation; unless `force`, nothing when its header
    (written last) is there already. Returns (items written, calls)."""
    conversation = read_conversation(path)
    users = {h: user_by_handle(db, h) for h in participants(conversation)}
    a, b = (users[h] for h in participants(conversation))
    group = layout.group_uuid_for(a["uuid"], b["uuid"])
    header_key = layout.header_key(group)
    if not force and ddb.get(header_key):
        return 0, 0
    present = existing_messages(ddb, group)
    end = _end_of(present, group, conversation) or datetime.now(timezone.utc) - timedelta(hours=1)
    header, *rows_and_messages = seed_items(users, conversation, end)
    rows, messages = rows_and_messages[:2], rows_and_messages[2:]
    with_rows = {row["pk"] for row in group_rows(ddb, group)}
    missing = [m for m in messages if m["message_uuid"] not in present]
    missing += [row for row in rows if row["pk"] not in with_rows]
    calls = ddb.batch_write(missing, on_progress=on_progress) if missing else 0
    if not ddb.get(header_key):
        ddb.put(header)
        calls += 1
        missing.append(header)
    if on_progress:
        on_progress(len(messages) + len(rows) + 1 - len(missing))  # what was there already
    return len(missing), calls


def existing_messages(ddb: Ddb, group: str) -> dict[str, str]:
    """{message_uuid: sk} of the group's messages."""
    found: dict[str, str] = {}
    after = None
    while True:
        page = ddb.query(layout.message_pk(group), limit=100, newest_first=True, after_sk=after)
        found.update({m["message_uuid"]: m["sk"] for m in page.items})
        if page.next_sk is None:
            return found
        after = page.next_sk


def _end_of(present: dict[str, str], group: str, conversation: list[tuple[str, str]]) -> datetime | None:
    """The end of the span a previous run used, from one of its messages."""
    step = step_of(conversation)
    for position in range(len(conversation)):
        sk = present.get(message_uuid(group, position))
        if sk is not None:
            return datetime.fromisoformat(sk) - position * step + timedelta(days=SPAN_DAYS)
    return None
