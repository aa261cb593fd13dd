"""The stream's row mover: keeps each group's two rows pointing at its newest message.

The stream Lambda (aws/lambdas/cruddur-messaging-stream.py) is a thin handler over `apply_batch`;
the local stream worker runs that same handler. docs/stream.md tells the whole story; in short:

Per batch, only INSERTs of messages count, and per group only the newest one: a group row's sk is
the time of its last message, so applying the newest message makes every older one of the batch
moot. For each such group: who its participants are (the group's header, read consistently once
and remembered: it never changes), one Query of the GSI for its rows, then, for each participant
whose row is older than the message, a put of the row at the message's time (its key must be
free) and the delete of the old row (it must still be this group's). Rows already at or past the
message are left alone, so older, duplicate and replayed events never overwrite a newer state.
Normal case: one Query and four plain writes per group per batch. No transaction: a
transaction's writes cost twice the capacity of plain ones.

Plain writes in this order are safe because every state between them is one a reader and the
next attempt understand:
- after the put, before the delete, a participant has two rows of the group: lists keep the
  newest of a group's rows, and the next move, or the retry of this record, deletes the older one;
- a delete that finds its row gone means someone else moved it since our read (a concurrent or
  replayed record, with the index showing a row that had moved) or our own delete's response was
  lost: the participant's rows are then read from the table itself and all but the newest
  deleted, so a stale put never survives it;
- a row the index does not show is looked for in the table after a pause; a participant with no
  row at all (the API stopped between the message and the rows) gets one, made from the header's
  copy of the participants' names.

The GSI is eventually consistent, so it is trusted only where that is safe. A row it shows at or
past the message is at least that far in the table (rows only move forward, and the index only
lags). A row it shows that has moved makes the delete's condition fail, and the table is read.
Week-5 groups (no header) have exactly two participants, each with a row: the index must show
both, and until it does the record is reported failed, to be retried; never reported done.

Each row also carries its owner's read marker and unread count (lib/conversations/read_markers.py
counts from the table when the batch cannot tell). A participant's rows share one partition, so
two of their conversations whose last messages carry the same microsecond would need the same
key: the later one's row goes one microsecond later.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from lib.cache import Cache
from lib.conversations import layout, week5
from lib.conversations.read_markers import count_unread, group_rows, rows_of
from lib.ddb import Ddb, KeyTaken, deserialize, key_of

log = logging.getLogger(__name__)

# How many groups' headers a container remembers (they never change).
HEADER_CACHE_SIZE = 10_000
# The time one group may take at worst (its reads and writes, each retried by botocore with
# backoff): a group is begun only with this much of the invocation left. The groups left over are
# reported failed, so Lambda retries the batch from them, instead of the invocation timing out and
# every group of the batch being applied again.
TIME_FOR_A_GROUP_MS = 10_000


def _log(level: int, message: str, exc_info: bool = False, **fields: Any) -> None:
    # `fields` become the JSON line's own keys under the Lambda's formatter
    log.log(level, message, exc_info=exc_info, extra={"fields": fields})


@dataclass(frozen=True)
class NewMessage:
    group: str
    sk: str
    text: str
    message_uuid: str
    sender: str = ""


class IndexBehind(RuntimeError):
    """The GSI does not yet show every participant's row: try again later."""


class Unsettled(RuntimeError):
    """The group's rows kept changing under us: try the record again later."""


@dataclass(frozen=True)
class Header:
    """What a group's header tells: its participants, the fixed part of each one's row (the other
    participant's uuid and names) when it carries their profiles, and when the group began."""
    owners: frozenset[str]
    rows: Mapping[str, Mapping[str, Any]]
    created_at: str


def message_of(record: Mapping[str, Any]) -> NewMessage | None:
    """The message a stream record inserted, or None for anything else (other events, other
    items, records without a new image)."""
    if record.get("eventName") != "INSERT":
        return None
    image = deserialize((record.get("dynamodb") or {}).get("NewImage") or {})
    if not layout.is_message(image) or not image.get("sk"):
        return None
    return NewMessage(group=layout.message_group_uuid_of(image), sk=image["sk"],
                      text=image.get("message", ""), message_uuid=image["message_uuid"],
                      sender=image.get("user_uuid", ""))


def apply_batch(records: list[Mapping[str, Any]], mover: "RowMover",
                remaining_ms: Callable[[], int] | None = None,
                request_id: str | None = None, concurrency: int = 1) -> dict[str, list[dict[str, str]]]:
    """Apply a batch of stream records; the answer Lambda reads (ReportBatchItemFailures).

    Groups are independent (each has its own rows, and two of one participant's groups never
    share a key: see `RowMover.put_row`), so up to `concurrency` of them are moved at once: a
    backlog's batch of many groups takes the time of its slowest few, not of all in turn. A group
    is begun, in batch order, only when a slot is free and enough of the invocation is left.

    On failure, the answer names ONE record: the earliest, by position in the batch, of all the
    records of the groups that failed. Lambda retries a shard from the lowest sequence number it
    is given (and a batch's records are in sequence order), so naming more would change nothing;
    naming exactly that one makes the retry start at the first record that might not have been
    applied, so nothing is lost. Records after it that did succeed are replayed too, harmlessly:
    their groups' rows are already at or past them."""
    newest: dict[str, NewMessage] = {}
    batches: dict[str, dict[str, NewMessage]] = {}  # group -> its messages of the batch, by sk
    first_position: dict[str, int] = {}
    messages = 0
    for position, record in enumerate(records):
        message = message_of(record)
        if message is None:
            continue
        messages += 1
        first_position.setdefault(message.group, position)
        if message.group not in newest or message.sk > newest[message.group].sk:
            newest[message.group] = message
        batches.setdefault(message.group, {})[message.sk] = message

    def move(group: str, message: NewMessage) -> str:
        try:
            return mover.apply(message, list(batches[group].values()))
        except Exception as error:  # one group's failure must not stop the others
            _log(logging.ERROR, "group update failed", exc_info=True, request_id=request_id,
                 message_group_uuid=group, sk=message.sk, error_type=type(error).__name__)
            return "failed"

    results: dict[str, "Future[str] | str"] = {}
    slots = threading.BoundedSemaphore(max(1, concurrency))
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(newest)))) as pool:
        for group, message in newest.items():
            slots.acquire()
            if remaining_ms is not None and remaining_ms() < TIME_FOR_A_GROUP_MS:
                slots.release()
                results[group] = "postponed"  # out of time: this group and the rest, later
                continue
            running = pool.submit(move, group, message)
            running.add_done_callback(lambda _: slots.release())
            results[group] = running
    outcomes: dict[str, int] = {}
    failed: list[int] = []
    for group, result in results.items():
        outcome = result if isinstance(result, str) else result.result()
        if outcome in ("failed", "postponed"):
            failed.append(first_position[group])
        if outcome != "failed":
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    answer: dict[str, list[dict[str, str]]] = {"batchItemFailures": []}
    if failed:
        retry_from = records[min(failed)]
        answer["batchItemFailures"].append({"itemIdentifier": retry_from["dynamodb"]["SequenceNumber"]})
    _log(logging.INFO, "batch done", request_id=request_id, records=len(records),
         messages=messages, groups=len(newest), failed_groups=len(failed), outcomes=outcomes,
         retry_from=answer["batchItemFailures"][0]["itemIdentifier"] if failed else None)
    return answer


class RowMover:
    """Brings a group's rows to a message, over one table. Remembers headers (they never change)
    in `headers`, which a Lambda keeps for its container's life. Safe to share between threads
    (`apply_batch` moves several groups at once)."""

    def __init__(self, table: Ddb, index: str = layout.GSI_NAME, move_attempts: int = 4,
                 headers: "Cache[Header] | None" = None):
        self.table, self.index, self.move_attempts = table, index, max(1, move_attempts)
        self.headers: "Cache[Header]" = Cache(HEADER_CACHE_SIZE) if headers is None else headers

    def apply(self, message: NewMessage, batch: list[NewMessage] | None = None) -> str:
        """Bring each participant's row of the group to `message`, the newest of `batch` (the
        group's messages in this batch, for the unread counts). Returns "moved" (something was
        written), "current" (every row was at or past it already) or "no-rows" (not a
        conversation: no header, and no row anywhere). Raises when it cannot, IndexBehind among
        others."""
        batch = batch or [message]
        header = self.header(message.group)
        for attempt in range(1, self.move_attempts + 1):
            try:
                by_owner = self.current_rows(message, header, settled=attempt > 1)
            except IndexBehind as behind:
                if attempt == self.move_attempts:
                    raise
                _log(logging.INFO, "index behind, reading again", message_group_uuid=message.group,
                     attempt=attempt, reason=str(behind))
                time.sleep(random.uniform(0.05, 0.1 * 2 ** attempt))
                continue
            if by_owner is None:
                _log(logging.WARNING, "not a conversation: no header and no rows",
                     message_group_uuid=message.group, sk=message.sk)
                return "no-rows"
            moved = False
            for owner, rows in by_owner.items():
                moved |= self.bring_up(message, owner, rows, header, batch)
            return "moved" if moved else "current"
        raise AssertionError("unreachable")

    def header(self, group: str) -> Header | None:
        """The group's header (a consistent read, then remembered); None when the group has none
        (one written by the bootcamp's week-5 backend, or not a conversation)."""
        return self.headers.get_or_load(group, lambda: self._read_header(group))

    def _read_header(self, group: str) -> Header | None:
        item = self.table.get(layout.header_key(group), attributes=("participants", "profiles", "created_at"))
        if item is None:
            return None
        people = list(item["participants"])
        profiles = item.get("profiles") or {}
        rows: dict[str, dict[str, Any]] = {}
        if len(people) == 2 and all(p in profiles for p in people):
            for me, other in (people, people[::-1]):
                rows[me] = {"pk": layout.group_pk(me), "message_group_uuid": group, "user_uuid": other,
                            "user_display_name": profiles[other]["display_name"],
                            "user_handle": profiles[other]["handle"]}
        return Header(owners=frozenset(people), rows=rows, created_at=item.get("created_at", ""))

    def current_rows(self, message: NewMessage, header: Header | None,
                     settled: bool) -> dict[str, list[dict[str, Any]]] | None:
        """Each participant's rows of the group (by user uuid), oldest first: as the GSI shows
        them, and for a participant it shows none, once `settled` (after a pause), as the table
        holds them (an empty list when the row was never made and the header says how to make
        it). None when there is no conversation to update. IndexBehind while not settled."""
        by_owner: dict[str, list[dict[str, Any]]] = {}
        for row in group_rows(self.table, message.group, self.index):
            by_owner.setdefault(layout.owner_of(row), []).append(row)
        if header is None:  # a week-5 group: its two rows' owners are its participants
            if len(by_owner) >= 2:
                if len(by_owner) == 2:  # give it a header: the API serves it as any other group
                    week5.adopt(self.table, message.group, [r for rows in by_owner.values() for r in rows])
                return _oldest_first(by_owner)
            if not by_owner and not self.has_row(message.sender, message.group):
                return None
            raise IndexBehind(f"a group without a header shows {len(by_owner)} of its 2 rows")
        by_owner = {owner: rows for owner, rows in by_owner.items() if owner in header.owners}
        missing = header.owners - by_owner.keys()
        if missing and not settled:
            raise IndexBehind(f"no row shown for {len(missing)} of {len(header.owners)} participants")
        for owner in missing:
            rows = rows_of(self.table, owner, message.group, header.created_at)
            if not rows and owner not in header.rows:
                raise IndexBehind("a participant has no row, and the header cannot make one")
            by_owner[owner] = rows
        return _oldest_first(by_owner)

    def has_row(self, user: str, group: str) -> bool:
        """Whether `user` has a row for `group`, read from the table itself (consistently): the
        rare check of a group that has neither a header nor a row in the index."""
        if not user:
            return False
        found = self.table.query_items(layout.group_pk(user), consistent=True,
                                       where={"message_group_uuid": group}, attributes=("pk",))
        return next(found, None) is not None

    def bring_up(self, message: NewMessage, owner: str, rows: list[dict[str, Any]],
                 header: Header | None, batch: list[NewMessage] | None = None) -> bool:
        """One participant's step, in the order that is safe without a transaction: first the row
        at the message (a conditional put: its key must be free), then the delete of every older
        row of theirs (conditional: it must still be this group's, and the one we copied still
        carry the read marker we read). A delete that finds its row gone or changed means someone
        else moved it or marked it read meanwhile (or our own delete's response was lost):
        `reconcile` then reads the participant's rows from the table, keeps only the newest, and
        gives it the latest marker. True when it wrote."""
        batch = batch or [message]
        latest = rows[-1] if rows else None
        if latest is not None and latest["sk"] >= message.sk:
            # Already at or past the message: a duplicate, or a replay after a move that failed
            # part-way. Such a move's rows sit at this batch's messages, so from its oldest on, and
            # a lagging index may not show them yet: those rows are read from the table itself
            # (only on this path, which a first delivery never takes).
            since = min(m.sk for m in batch)
            recent = rows_of(self.table, owner, message.group, since)
            if recent:
                rows = [r for r in rows if r["sk"] < since] + recent
                latest = rows[-1]
        marker, count = unread(latest, batch, owner)
        if latest is not None and latest["sk"] >= message.sk:
            older = rows[:-1]  # leftovers of an interrupted move, if any
            wrote = self.settle_count(message.group, owner, latest, marker, count)
        else:
            base = latest if latest is not None else header.rows[owner]  # type: ignore[union-attr]
            if count is None:
                count = count_unread(self.table, message.group, owner, marker, message.sk)
            row = {**base, "unread_count": count}
            row.pop("read_up_to", None)
            if marker:
                row["read_up_to"] = marker
            self.put_row(message, owner, row)
            older, wrote = rows, True
        for row in older:
            if not self.delete_row(message.group, row, marked=row is latest):
                self.reconcile(message.group, owner, rows[0]["sk"])
                return True
            wrote = True
        return wrote

    def settle_count(self, group: str, owner: str, row: Mapping[str, Any], marker: str,
                     count: int | None, again: bool = True) -> bool:
        """A row already at or past the batch's newest message still takes what the batch changes
        of its marker and count (a message of theirs, or one of the other's, that came late).
        Normally nothing: True only when it wrote. When the row changed meanwhile (marked read, or
        moved), `reconcile` reads the participant's rows again, unless `again` is False (it is
        reconciling)."""
        before = row.get("read_up_to", "")
        counted = int(row.get("unread_count", 0))
        if count is None:
            count = count_unread(self.table, group, owner, marker, row["sk"])
        if (marker, count) == (before, counted):
            return False
        try:
            self.table.update_if(key_of(row), {"read_up_to": marker, "unread_count": count},
                                 {"message_group_uuid": group, "read_up_to": before or None})
        except KeyTaken as changed:
            now = changed.held.get(0) or {}
            if (now.get("read_up_to", ""), int(now.get("unread_count", -1))) == (marker, count):
                return True  # our own update landed and its response was lost: the SDK's retry found it
            if not again:
                raise Unsettled(f"the row of {owner} keeps changing") from changed
            self.reconcile(group, owner, row["sk"])
        return True

    def put_row(self, message: NewMessage, owner: str, base: Mapping[str, Any]) -> None:
        """The participant's row at the message, unless it is there already; a microsecond later
        when another conversation's row holds the key (keys stay unique, the list keeps its
        order)."""
        for shift in range(self.move_attempts * 4):
            row = {**base, "sk": layout.later(message.sk, shift), "message": message.text}
            try:
                self.table.put_new(row)
                return
            except KeyTaken as taken:
                held = taken.held.get(0, {}).get("message_group_uuid")
                if held is None or held == message.group:
                    return  # already there: a duplicate record, a concurrent mover, or our own retry
                _log(logging.INFO, "row key held by another conversation, one microsecond later",
                     message_group_uuid=message.group, sk=message.sk, owner=owner)
        raise Unsettled(f"no free key for {owner} near {message.sk}")

    def delete_row(self, group: str, row: Mapping[str, Any], marked: bool = False) -> bool:
        """Delete one of the group's rows; False when it is no longer there (or no longer this
        group's), or, when `marked`, no longer carries the read marker it was read with."""
        expect: dict[str, Any] = {"message_group_uuid": group}
        if marked:
            expect["read_up_to"] = row.get("read_up_to") or None
        return self.table.delete_if(key_of(row), expect)

    def reconcile(self, group: str, owner: str, since: str) -> None:
        """The participant's rows of the group from `since` on, read from the table
        (consistently), down to the newest one, which takes the latest read marker any of them
        carries and its count read again from the table. What a stale index read, a concurrent
        mover, a read marked during a move or a lost response leaves behind is put right here,
        never by guessing from the index."""
        rows = rows_of(self.table, owner, group, since)
        if not rows:
            return
        newest = rows[-1]
        marker = max(row.get("read_up_to", "") for row in rows)
        # counted again from the table too: what was counted from a stale read may be off
        self.settle_count(group, owner, newest, marker, None, again=False)
        for row in rows[:-1]:
            self.delete_row(group, row)
        _log(logging.INFO, "rows read again from the table", message_group_uuid=group, owner=owner,
             rows=len(rows))


def unread(row: Mapping[str, Any] | None, batch: list[NewMessage], me: str) -> tuple[str, int | None]:
    """(read marker, unread count) the participant's row must carry once `batch` is applied: the
    count is of the other participant's messages newer than the marker, up to the row's last
    message. Sending marks read: the marker moves to the participant's own newest message. The
    count is worked out from the row as read and the batch's messages newer than the row; None
    when that cannot be told (a record older than the row came late, or again: counted before or
    not?), and the count must be read from the table."""
    last = row["sk"] if row else ""
    counted = int(row.get("unread_count", 0)) if row else 0
    before = row.get("read_up_to", "") if row else ""
    marker = max([before, *(m.sk for m in batch if m.sender == me)])
    if marker == before:
        base: int | None = counted
    else:
        base = 0 if marker >= last else None  # what it had counted is read now, or partly
    theirs = [m for m in batch if m.sender != me and m.sk > marker]
    if base is None or any(m.sk < last for m in theirs):
        return marker, None
    return marker, base + sum(1 for m in theirs if m.sk > last)


def _oldest_first(by_owner: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {owner: sorted(rows, key=lambda row: row["sk"]) for owner, rows in by_owner.items()}
