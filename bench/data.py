"""The benchmark's data set, on top of the usual seed:

  users    benchbig and bench0001..bench<partners> in PostgreSQL; benchbig and the first
           <cognito_users - 1> of the others also in the local Cognito pool, with the seed password.
  groups   benchbig shares one group with every bench user (so it has <partners> groups); each has
           two messages, except benchbig <-> bench0001, the big group, with <big_messages>.
           bench0002 has nine more groups (bench0003..bench0011), so ten in all: the small user; of
           them bench0002 <-> bench0003 has <small_messages> messages: the small group.
           Users measured with first messages (pattern C creating a conversation) are given one
           more group each, with a user of the top of the range.

The stream Lambda and the seed are measured on tables of their own (bench/stream.py, run.py).
Items are built with lib.conversations.layout's builders and written with Ddb.batch_write, 25 at a time.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from domain import times
from lib import aws, cognito
from lib import ddb
from lib.conversations import layout
from lib.config import Settings
from lib.db import Db
from lib.users import UserStore
from devstack import LocalSettings, access_token, add_user
from services.link_cognito_users import LinkCognitoUsers

log = logging.getLogger("bench")

BIG = "benchbig"
SMALL_USER_GROUPS = 10


def handle(n: int) -> str:
    return f"bench{n:04d}"


@dataclass(frozen=True)
class Sizes:
    cruds: int            # benchbig's cruds in PostgreSQL (one reply to every tenth)
    partners: int         # bench users in PostgreSQL = benchbig's groups
    cognito_users: int    # users added to the Cognito pool (benchbig included)
    big_messages: int     # messages in the big group
    small_messages: int   # messages in the small group
    senders: int          # users posting in C and D (each in a group with benchbig)
    new_pairs: int        # first messages between users with no group yet (C, first creation)


# A few first messages (pattern C creating a conversation): each needs a pair without one.
FULL = Sizes(cruds=10_000, partners=1000, cognito_users=120, big_messages=10_000, small_messages=10,
             senders=16, new_pairs=4)
QUICK = Sizes(cruds=300, partners=30, cognito_users=12, big_messages=300, small_messages=10,
              senders=6, new_pairs=3)


@dataclass
class DataSet:
    users: dict[str, dict[str, Any]]   # handle -> {uuid, display_name, handle}
    big_group: str
    small_group: str
    senders: list[str]                 # handles, each in a group with benchbig
    new_pairs: list[tuple[str, str]]   # (sender, recipient) with no group yet
    items: int                         # items written
    calls: int                         # BatchWriteItem calls made

    def group_with_big(self, sender: str) -> str:
        return layout.group_uuid_for(self.users[BIG]["uuid"], self.users[sender]["uuid"])


def insert_users(settings: Settings, sizes: Sizes) -> dict[str, dict[str, Any]]:
    db = Db(settings)
    try:
        db.query_commit(
            "INSERT INTO public.users (display_name, handle, email) "
            "SELECT 'Bench User ' || i, 'bench' || lpad(i::text, 4, '0'), "
            "       'bench' || lpad(i::text, 4, '0') || '@bench.example' "
            "FROM generate_series(1, %(n)s) AS i ON CONFLICT (handle) DO NOTHING",
            {"n": sizes.partners})
        db.query_commit(
            "INSERT INTO public.users (display_name, handle, email) "
            "VALUES ('Bench Big', %(h)s, 'benchbig@bench.example') ON CONFLICT (handle) DO NOTHING",
            {"h": BIG})
        rows = UserStore(db).everyone()
    finally:
        db.close()
    return {r["handle"]: {"uuid": r["uuid"], "display_name": r["display_name"], "handle": r["handle"]}
            for r in rows}


def write_activities(settings: Settings, sizes: Sizes) -> None:
    """benchbig's cruds, a minute apart, unexpired, and a reply by bench0001 to every tenth."""
    db = Db(settings)
    try:
        db.query_commit(
            "INSERT INTO public.activities (user_uuid, message, expires_at, created_at) "
            "SELECT (SELECT uuid FROM public.users WHERE handle = %(big)s), 'bench crud ' || i, "
            "       now() + interval '30 days', now() - i * interval '1 minute' "
            "FROM generate_series(1, %(n)s) AS i", {"big": BIG, "n": sizes.cruds})
        db.query_commit(
            "WITH parents AS (SELECT uuid, created_at FROM public.activities "
            "                 WHERE message LIKE 'bench crud %%0') "
            "INSERT INTO public.activities (user_uuid, message, reply_to_activity_uuid, created_at) "
            "SELECT (SELECT uuid FROM public.users WHERE handle = %(partner)s), 'bench reply', uuid, "
            "       created_at + interval '1 second' FROM parents", {"partner": handle(1)})
        db.query_commit("UPDATE public.activities p SET replies_count = 1 "
                        "WHERE message LIKE 'bench crud %%0'")
        db.query_commit("ANALYZE public.activities")
    finally:
        db.close()


def add_cognito_users(settings: Settings, users: dict[str, dict[str, Any]], handles: list[str]) -> None:
    """Add these users to the local pool (devstack.add_user, a few at a time), then link
    PostgreSQL to them (services.link_cognito_users)."""
    client = aws.client(settings, "cognito-idp")
    pool_id = settings.cognito_user_pool_id
    password = LocalSettings().seed_password

    def add(h: str) -> None:
        add_user(client, pool_id, {**users[h], "email": f"{h}@bench.example"}, password)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add, handles))
    db = Db(settings)
    try:
        LinkCognitoUsers.run(UserStore(db), cognito.pool_users(client, pool_id), replace=True)
    finally:
        db.close()


def tokens_for(settings: Settings, handles: list[str]) -> dict[str, str]:
    """Access tokens from the local Cognito (USER_PASSWORD_AUTH, as the frontend signs in)."""
    with ThreadPoolExecutor(4) as pool:
        return dict(zip(handles, pool.map(lambda h: access_token(settings, h), handles)))


def conversation(a: dict[str, Any], b: dict[str, Any], count: int, start: datetime,
                 step: timedelta) -> list[dict[str, Any]]:
    """Header, both group rows and `count` messages (alternating senders) of a group."""
    group = layout.group_uuid_for(a["uuid"], b["uuid"])
    messages = [layout.message_item(group, (a, b)[i % 2], f"bench message {i}",
                                    times.iso(start + i * step)) for i in range(count)]
    last = messages[-1]
    sender, recipient = ((a, b), (b, a))[(count - 1) % 2]  # alternating: one unread for the other
    return [
        layout.header_item(group, [a["uuid"], b["uuid"]], messages[0]["sk"], layout.profiles_of(a, b)),
        *layout.message_rows(sender, recipient, group, last["message"], last["sk"]),
        *messages,
    ]


def build_items(users: dict[str, dict[str, Any]], sizes: Sizes,
                now: datetime) -> list[dict[str, Any]]:
    big = users[BIG]
    items: list[dict[str, Any]] = []
    # Every conversation starts at its own microsecond, so that the sort keys of a user's group
    # rows (the time of the last message) never collide.
    base = now - timedelta(days=30)
    for n in range(1, sizes.partners + 1):
        count = sizes.big_messages if n == 1 else 2
        items += conversation(users[handle(n)], big, count, base + timedelta(milliseconds=n),
                              timedelta(seconds=1) if n == 1 else timedelta(minutes=1))
    small = users[handle(2)]
    for n in range(3, 3 + SMALL_USER_GROUPS - 1):
        count = sizes.small_messages if n == 3 else 2
        items += conversation(small, users[handle(n)], count,
                              base + timedelta(days=1, milliseconds=n), timedelta(minutes=1))
    return items


def write_items(settings: Settings, items: list[dict[str, Any]], threads: int = 4) -> int:
    """Ddb.batch_write over a few threads (each its own client). Returns the calls made."""
    chunk = max(ddb.BATCH_SIZE, -(-len(items) // threads // ddb.BATCH_SIZE) * ddb.BATCH_SIZE)
    parts = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(lambda part: ddb.Ddb(settings).batch_write(part), parts))


def prepare_users(settings: Settings, sizes: Sizes) -> DataSet:
    """The users, in PostgreSQL and Cognito; the DataSet's DynamoDB part is written by
    `write_conversations`."""
    if sizes.partners < max(SMALL_USER_GROUPS + 1, sizes.senders + sizes.new_pairs + 5):
        raise ValueError("too few partners for the data set")
    users = insert_users(settings, sizes)
    add_cognito_users(settings, users,
                      [BIG] + [handle(n) for n in range(1, sizes.cognito_users)])
    senders = [handle(n) for n in range(1, sizes.senders + 1)]
    # First messages: a sender to a user it shares no group with (the top of the range); not the
    # small user, whose ten groups are measured.
    firsts = [s for s in senders if s != handle(2)]
    new_pairs = [(firsts[i % len(firsts)], handle(sizes.partners - i)) for i in range(sizes.new_pairs)]
    big, small = users[BIG]["uuid"], users[handle(2)]["uuid"]
    return DataSet(
        users=users,
        big_group=layout.group_uuid_for(big, users[handle(1)]["uuid"]),
        small_group=layout.group_uuid_for(small, users[handle(3)]["uuid"]),
        senders=senders, new_pairs=new_pairs, items=0, calls=0)


def write_conversations(settings: Settings, sizes: Sizes, ds: DataSet) -> None:
    items = build_items(ds.users, sizes, datetime.now(timezone.utc))
    ds.calls = write_items(settings, items)
    ds.items = len(items)
