"""The stream's row mover: keeps each group's two rows pointing at its newest message.

The stream Lambda (aws/lambdas/cruddur-messaging-stream.py) is a thin handler over `apply_batch`;
the local stream worker runs that same handler. docs/stream.md tells the whole story; in short:

Per batch, only INSERTs of messages count, and per group only the newest one: a group row's sk is
the time of its last message, so applying the newest message makes every older one of the batch
moot. Edits and deletions of messages (MODIFYs) come after, per message only the one that says
most (a deletion beats every edit): see `RowMover.apply_edit` and `RowMover.apply_delete`. For
each such group: who its participants are (the group's header, read consistently once
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

Each row also carries its owner's read marker and unread count: domain/unread.py says what they
must be, read_markers.py counts them from the table when the batch cannot tell and writes them.
A participant's rows share one partition, so two of their conversations whose last messages carry
the same microsecond would need the same key: the later one's row goes one microsecond later.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Mapping

from domain import unread
from domain.times import later
from lib.conversations import layout, paging, read_markers, week5
from lib.conversations.participants import Header, Participants
from lib.conversations.records import MessageDeleted, MessageEdited, NewMessage, message_changed, new_message
from lib.conversations.rows import IndexBehind, group_rows, has_row, rows_of
from lib.ddb import Ddb, KeyTaken, key_of

log = logging.getLogger(__name__)

# The time one group may take at worst (its reads and writes, each retried by botocore with
# backoff): a group is begun only with this much of the invocation left. The groups left over are
# reported failed, so Lambda retries the batch from them, instead of the invocation timing out and
# every group of the batch being applied again.
TIME_FOR_A_GROUP_MS = 10_000
EDIT_STAMP, SHOWN = layout.EDIT_STAMP, layout.SHOWN


def _log(level: int, message: str, exc_info: bool = False, **fields: Any) -> None:
    # `fields` become the JSON line's own keys under the Lambda's formatter
    log.log(level, message, exc_info=exc_info, extra={"fields": fields})


class Unsettled(RuntimeError):
    """The group's rows kept changing under us: try the record again later."""


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
    # group -> its changed messages' latest change (a deletion beats every edit)
    changes: dict[str, dict[str, MessageEdited | MessageDeleted]] = {}
    for position, record in enumerate(records):
        message = new_message(record)
        if message is None:
            change = message_changed(record)
            if change is not None:
                first_position.setdefault(change.group, position)
                latest = changes.setdefault(change.group, {})
                if _supersedes(change, latest.get(change.sk)):
                    latest[change.sk] = change
            continue
        messages += 1
        first_position.setdefault(message.group, position)
        if message.group not in newest or message.sk > newest[message.group].sk:
            newest[message.group] = message
        batches.setdefault(message.group, {})[message.sk] = message

    def move(group: str) -> str:
        """The group's rows brought to its newest message of the batch, then to its messages'
        edits and deletions, oldest message first."""
        try:
            outcome = mover.apply(newest[group], list(batches[group].values())) if group in newest else "current"
            for _, change in sorted(changes.get(group, {}).items()):
                if isinstance(change, MessageDeleted):
                    if mover.apply_delete(change) and outcome == "current":
                        outcome = "deleted"
                elif mover.apply_edit(change) and outcome == "current":
                    outcome = "edited"
            return outcome
        except Exception as error:  # one group's failure must not stop the others
            _log(logging.ERROR, "group update failed", exc_info=True, request_id=request_id,
                 message_group_uuid=group, error_type=type(error).__name__)
            return "failed"

    results: dict[str, "Future[str] | str"] = {}
    slots = threading.BoundedSemaphore(max(1, concurrency))
    groups = sorted({*newest, *changes}, key=lambda group: first_position[group])
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(groups)))) as pool:
        for group in groups:
            slots.acquire()
            if remaining_ms is not None and remaining_ms() < TIME_FOR_A_GROUP_MS:
                slots.release()
                results[group] = "postponed"  # out of time: this group and the rest, later
                continue
            running = pool.submit(move, group)
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
         messages=messages, changed=sum(len(c) for c in changes.values()), groups=len(groups),
         failed_groups=len(failed), outcomes=outcomes,
         retry_from=answer["batchItemFailures"][0]["itemIdentifier"] if failed else None)
    return answer


class RowMover:
    """Brings a group's rows to a message, over one table. Asks `participants` for the group's
    header (read once, then remembered: a Lambda keeps it for its container's life). Safe to share
    between threads (`apply_batch` moves several groups at once)."""

    def __init__(self, table: Ddb, participants: Participants | None = None, move_attempts: int = 4):
        self.table, self.move_attempts = table, max(1, move_attempts)
        self.participants = participants if participants is not None else Participants(table)
        self.index = self.participants.index

    def apply(self, message: NewMessage, batch: list[NewMessage] | None = None) -> str:
        """Bring each participant's row of the group to `message`, the newest of `batch` (the
        group's messages in this batch, for the unread counts). Returns "moved" (something was
        written), "current" (every row was at or past it already) or "no-rows" (not a
        conversation: no header, and no row anywhere). Raises when it cannot, IndexBehind among
        others."""
        batch = batch or [message]
        header = self.participants.header(message.group)
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

    def apply_edit(self, edit: MessageEdited) -> bool:
        """The rows showing the edited message's text take its new text. A row that has moved on
        to a newer message (or to an earlier one, after deletions) is left alone, and an edit
        delivered late or twice never overwrites a newer one: a row carries the time of the edit
        whose text it shows (EDIT_STAMP). Each participant's rows from the message's time on are
        read from the table itself (one small Query each), not the index, which may not show the
        row there yet. True when it wrote."""
        wrote = False
        for owner in self.participants.both(edit.group):
            for row in rows_of(self.table, owner, edit.group, since=edit.sk):
                if layout.shown_of(row) == edit.sk:
                    wrote |= self.table.update_if_newer(
                        key_of(row), {"message": edit.message.text, EDIT_STAMP: edit.edited_at},
                        {"message_group_uuid": edit.group, SHOWN: row.get(SHOWN)}, EDIT_STAMP)
        return wrote

    def apply_delete(self, deleted: MessageDeleted) -> bool:
        """Each participant's rows let the deleted message go: a row showing its text takes the
        text of the last message left at or before the row's time ("" when none is left), and
        the other participant's row no longer counts it when it was unread. Both are worked out
        from the table itself (consistent reads), so a deletion delivered late or twice writes
        what is true now, or nothing. A row keeps its place in the list (its sk: rows only move
        forward, which is what makes moving them safe). Each write holds only while the row
        still is as it was read; a row that changed meanwhile is read again. True when it wrote."""
        wrote = False
        left: dict[str, dict[str, Any]] = {}  # a row's sk -> the last message left at it (both rows share it)
        for owner in self.participants.both(deleted.group):
            for attempt in range(self.move_attempts):
                try:
                    wrote |= self._let_go(deleted, owner, left)
                    break
                except KeyTaken:
                    continue  # moved, marked read or changed meanwhile: read the rows again
            else:
                raise Unsettled(f"the rows of {owner} keep changing")
        return wrote

    def _let_go(self, deleted: MessageDeleted, owner: str, left: dict[str, dict[str, Any]]) -> bool:
        wrote = False
        for row in rows_of(self.table, owner, deleted.group, since=deleted.sk):
            values: dict[str, Any] = {}
            if layout.shown_of(row) == deleted.sk:
                if row["sk"] not in left:
                    kept = paging.newest_first(self.table, layout.message_pk(deleted.group), 1, up_to=row["sk"],
                                               consistent=True, where=layout.NOT_DELETED, next_page=False,
                                               attributes=("sk", "message", "edited_at")).items
                    left[row["sk"]] = kept[0] if kept else {"sk": "", "message": ""}
                shown = left[row["sk"]]
                values = {"message": shown["message"], EDIT_STAMP: shown.get("edited_at"),
                          SHOWN: shown["sk"] if shown["sk"] != row["sk"] else None}
            marker, counted = row.get("read_up_to", ""), int(row.get("unread_count") or 0)
            if owner != deleted.sender and counted and marker < deleted.sk <= row["sk"]:
                count = unread.capped(read_markers.count_unread(self.table, deleted.group, owner, marker, row["sk"]))
                if count != counted:
                    values["unread_count"] = count
            if values:
                self.table.update_if(key_of(row), values,
                                     {**read_markers.as_read(row, deleted.group), SHOWN: row.get(SHOWN)})
                wrote = True
        return wrote

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
            if not by_owner and not has_row(self.table, message.sender, message.group):
                return None
            raise IndexBehind(f"a group without a header shows {len(by_owner)} of its 2 rows")
        by_owner = {owner: rows for owner, rows in by_owner.items() if owner in header.owners}
        missing = set(header.owners) - by_owner.keys()
        if missing and not settled:
            raise IndexBehind(f"no row shown for {len(missing)} of {len(header.owners)} participants")
        for owner in missing:
            rows = rows_of(self.table, owner, message.group, header.created_at)
            if not rows and owner not in header.rows:
                raise IndexBehind("a participant has no row, and the header cannot make one")
            by_owner[owner] = rows
        return _oldest_first(by_owner)

    def bring_up(self, message: NewMessage, owner: str, rows: list[dict[str, Any]],
                 header: Header | None, batch: list[NewMessage] | None = None) -> bool:
        """One participant's step, in the order that is safe without a transaction: first the row
        at the message (a conditional put: its key must be free), then the delete of every older
        row of theirs (conditional: it must still be this group's, and the one we copied still
        carry the read marker and count we read). A delete that finds its row gone or changed
        means someone else moved it, marked it read or recounted it meanwhile (or our own
        delete's response was lost):
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
        marker, count = unread.after_batch(layout.seen_of(latest), batch, owner)
        if latest is not None and latest["sk"] >= message.sk:
            older = rows[:-1]  # leftovers of an interrupted move, if any
            wrote = self.settle_count(message.group, owner, latest, marker, count)
        else:
            base = latest if latest is not None else header.rows[owner]  # type: ignore[union-attr]
            if count is None:
                count = read_markers.count_unread(self.table, message.group, owner, marker, message.sk)
            row = {**base, "unread_count": count}
            row.pop("read_up_to", None)
            row.pop(EDIT_STAMP, None)  # the stamp of the text it showed: a new message's text is unedited
            row.pop(SHOWN, None)  # which message's text it showed: the new message's now
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
            count = read_markers.count_unread(self.table, group, owner, marker, row["sk"])
        count = unread.capped(count)
        if (marker, count) == (before, counted):
            return False
        try:
            read_markers.write(self.table, row, group, marker, count)
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
            row = {**base, "sk": later(message.sk, shift), "message": message.text}
            if shift:
                row[SHOWN] = message.sk  # its text is the message's, which is a microsecond earlier
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
        group's), or, when `marked`, no longer carries the read marker and count it was read with."""
        expect = read_markers.as_read(row, group) if marked else {"message_group_uuid": group}
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


def _supersedes(change: MessageEdited | MessageDeleted, before: MessageEdited | MessageDeleted | None) -> bool:
    """Whether `change` of a message says more than `before` (of the same message, in the same
    batch): a deletion beats every edit, a later edit an earlier one."""
    if before is None or isinstance(change, MessageDeleted):
        return True
    return isinstance(before, MessageEdited) and change.edited_at > before.edited_at


def _oldest_first(by_owner: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {owner: sorted(rows, key=lambda row: row["sk"]) for owner, rows in by_owner.items()}
