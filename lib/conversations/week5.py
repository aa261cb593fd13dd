"""Everything about tables the bootcamp's week-5 backend wrote, in one place: how the store reads
their groups until they are migrated, and the migration itself (bin/ddb/migrate).

Until the table carries the current layout's mark (META#layout), the store asks this module, and
only on a cache miss: who a group's participants are (its rows' owners, through the GSI), and
whether a pair already has a conversation under a random uuid (a Query of one participant's
rows). Once migrated, none of this runs.

The migration:

Such a table holds, per conversation, a random uuid4 message_group_uuid, its two GRP# rows (sk =
time of the last message, `datetime.now(timezone.utc).astimezone().isoformat()`, so in the
server's own offset and without microseconds when they were 0) and its MSG# items; no header. The
migration, from one Scan of the table:

  1. gives each such group its header, GROUP#<uuid> (participants: its rows' owners), so that
     "who may read this" is one GetItem again;
  2. gives each pair an alias header at its derived uuid, GROUP#<uuid5 of the pair> with
     message_group_uuid = the pair's (most recent) old group, so that a first message by handle
     finds it with the same one conditional write as any other (never over a real header);
  3. re-keys every row and message whose sk is not UTC with microseconds and +00:00 (a put of
     the same item at the canonical sk, then a delete of the old one), so that strings sort in
     time order again;
  4. marks the table (META#layout, version 2), which ends the API's searches for old groups.

Every step writes only what is missing, so the migration can be run again, and run again after an
interruption, to the same end. Nothing is deleted before its replacement is written.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from domain.times import iso, now_iso
from lib.conversations import layout
from lib.ddb import Ddb, KeyTaken

log = logging.getLogger(__name__)


def conversation_between(table: Ddb, owner_uuid: str, other_uuid: str) -> str | None:
    """The most recent group of `owner`'s rows that names `other`, read from the table
    (consistently): how a week-5 group, whose uuid is not derived from its pair, is found. Reads
    the owner's whole partition: only for tables not yet migrated."""
    first = next(table.query_items(layout.group_pk(owner_uuid), newest_first=True, consistent=True,
                                   where={"user_uuid": str(other_uuid)},
                                   attributes=("message_group_uuid",)), None)
    return first["message_group_uuid"] if first else None


def layout_version(table: Ddb) -> int:
    """LAYOUT_VERSION once the table is in the current layout; 1 for a table that may hold the
    week-5 backend's groups without headers."""
    item = table.get(layout.LAYOUT_KEY, consistent=False)
    return int(item["version"]) if item else 1


def header_from_rows(group: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The header of a group the week-5 backend wrote, from its two rows: participants are the
    rows' owners, and (each row naming the other) their names."""
    owners = list(layout.owners_of(rows))
    first = min(canonical(row["sk"]) or row["sk"] for row in rows)
    named = {row["user_uuid"]: row for row in rows
             if {"user_uuid", "user_display_name", "user_handle"} <= row.keys()}
    profiles = ({u: {"display_name": r["user_display_name"], "handle": r["user_handle"]}
                 for u, r in named.items()} if sorted(named) == owners else None)
    return layout.header_item(group, owners, first, profiles)


def adopt(table: Ddb, group: str, rows: list[dict[str, Any]]) -> None:
    """Give a group the week-5 backend wrote its header, and the pair its alias, as the migration
    does: the stream Lambda calls this when it meets a headerless group with both rows, so that
    a conversation a week-5 writer starts on a migrated table (teams move from one backend to the
    other gradually) is served too, at no cost to the API. Conditional puts: never over a header
    or an alias that is there already."""
    header = header_from_rows(group, rows)
    owners = header["participants"]
    derived = layout.group_uuid_for(*owners)
    items = [header] + ([{**layout.header_item(derived, owners, now_iso()), "message_group_uuid": group}]
                        if derived != group else [])
    for item in items:
        try:
            table.put_new(item)
            log.info("gave the week-5 group %s its %s", group, "header" if item is header else "pair's alias")
        except KeyTaken:
            pass


@dataclass
class Plan:
    headers: list[dict[str, Any]] = field(default_factory=list)
    aliases: list[dict[str, Any]] = field(default_factory=list)
    rekeyed: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)  # (old, new)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (group, why)
    marked: bool = False  # the table already carries the current layout's mark
    scanned: int = 0

    @property
    def empty(self) -> bool:
        return not (self.headers or self.aliases or self.rekeyed) and self.marked


def canonical(sk: str) -> str | None:
    """`sk` as UTC ISO-8601 with microseconds and +00:00; None when it is not a time at all."""
    try:
        moment = datetime.fromisoformat(sk)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return iso(moment)


def plan(items: Iterable[dict[str, Any]]) -> Plan:
    """What the migration would write, from every item of the table."""
    result = Plan()
    rows: dict[str, list[dict[str, Any]]] = {}
    headers: dict[str, dict[str, Any]] = {}
    for item in items:
        result.scanned += 1
        pk, sk = item["pk"], item["sk"]
        if pk.startswith(layout.HEADER_PREFIX):
            headers[pk[len(layout.HEADER_PREFIX):]] = item
        elif pk == layout.LAYOUT_KEY["pk"]:
            result.marked = int(item.get("version", 1)) >= layout.LAYOUT_VERSION
        elif pk.startswith((layout.GROUP_PREFIX, layout.MESSAGE_PREFIX)):
            if pk.startswith(layout.GROUP_PREFIX) and "message_group_uuid" in item:
                rows.setdefault(item["message_group_uuid"], []).append(item)
            fixed = canonical(sk)
            if fixed is not None and fixed != sk:
                result.rekeyed.append((item, {**item, "sk": fixed}))

    latest_of_pair: dict[str, tuple[str, str]] = {}  # derived uuid -> (last sk, group)
    for group, group_rows in sorted(rows.items()):
        owners = list(layout.owners_of(group_rows))
        if len(owners) != 2:
            if group not in headers:
                result.skipped.append((group, f"{len(owners)} participant(s) among its rows, not 2"))
            continue
        last = max(canonical(row["sk"]) or row["sk"] for row in group_rows)
        if group not in headers:
            result.headers.append(header_from_rows(group, group_rows))
        derived = layout.group_uuid_for(*owners)
        if derived != group and (derived not in latest_of_pair or last > latest_of_pair[derived][0]):
            latest_of_pair[derived] = (last, group)
    for derived, (_, group) in sorted(latest_of_pair.items()):
        if derived not in headers:
            owners = list(layout.owners_of(rows[group]))
            result.aliases.append({**layout.header_item(derived, owners, now_iso()),
                                   "message_group_uuid": group})
    return result


def apply(ddb: Ddb, migration: Plan, on_progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write the plan: headers and re-keyed items in batches (puts before deletes), aliases one
    conditional put each (a real header of the pair wins), the mark last."""
    done = {"headers": 0, "aliases": 0, "rekeyed": 0, "calls": 0}
    if migration.headers:
        done["calls"] += ddb.batch_write(migration.headers, on_progress=on_progress)
        done["headers"] = len(migration.headers)
    for alias in migration.aliases:
        try:
            ddb.put_new(alias)
            done["aliases"] += 1
        except KeyTaken:
            log.info("the pair of %s has a header already; left as it is", alias["message_group_uuid"])
        done["calls"] += 1
        if on_progress:
            on_progress(1)
    if migration.rekeyed:
        done["calls"] += ddb.batch_write([new for _, new in migration.rekeyed], on_progress=on_progress)
        done["calls"] += ddb.batch_delete([{"pk": old["pk"], "sk": old["sk"]} for old, _ in migration.rekeyed])
        done["rekeyed"] = len(migration.rekeyed)
    if not migration.marked:
        ddb.put(layout.layout_item())
        done["calls"] += 1
    return done
