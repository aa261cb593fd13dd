"""cruddur-messaging-stream: keeps each group's two rows pointing at its newest message.

Triggered by the messages table's stream (view type NEW_IMAGE). It ships with lib/layout.py beside
it (bin/aws/deploy packages both; boto3 is Lambda's), whose names it uses, as the API does:

  message    pk MSG#<message_group_uuid>  sk <created time>  message_uuid, message, sender ...
  group row  pk GRP#<owner uuid>          sk <time of last message>  message_group_uuid, message,
             the other participant ...  (the only items with message_group_uuid, so the GSI
             message-group-sk-index holds exactly the two rows of each group)

Per batch, only INSERTs of messages count, and per group only the newest one: a group row's sk is
the time of its last message, so applying the newest message makes every older one of the batch
moot. For each such group: who its participants are (the group's header item, GROUP#<uuid>, read
consistently once and cached: it never changes), one Query of the GSI for its rows, then, for
each participant whose row is older than the message, a put of the row at the message's time
(its key must be free) and the delete of the old row (it must still be this group's). Rows
already at or past the message are left alone, so older, duplicate and replayed events never
overwrite a newer state. Normal case: one Query and four plain writes per group per batch,
however many messages the batch holds (and the header, the first time a container meets a
group). No transaction: a transaction's writes cost twice the capacity of plain ones.

Plain writes in this order are safe because every state between them is one a reader and the
next attempt understand:
- after the put, before the delete, a participant has two rows of the group: lists keep the
  newest of a group's rows (services/message_groups.py), and the next move, or the retry of this
  record, deletes the older one;
- a delete that finds its row gone means someone else moved it since our read (a concurrent or
  replayed record, with the index showing a row that had moved) or our own delete's response was
  lost: the participant's rows are then read from the table itself and all but the newest
  deleted, so a stale put never survives it;
- a row the index does not show is looked for in the table after a pause; a participant with
  no row at all (the API stopped between the message and the rows) gets one, made from the
  header's copy of the participants' names.

The GSI is eventually consistent: it may not yet show a row just written, or still show one just
moved. So it is trusted only where that is safe. A row it shows at or past the message is at
least that far in the table (rows only move forward, and the index only lags). A row it shows
that has moved makes the delete's condition fail, and the table is read. Groups written before
there were header items (the bootcamp's week-5 backend) have exactly two participants, each with
a row: the index must show both, and until it does the record is reported failed, to be retried;
it is never reported done.

Each row also carries its owner's read marker (read_up_to) and unread count (the other's messages
after the marker, up to the row's sk), in the same put: the count grows by the batch's messages
of the other newer than the row, sending moves the sender's marker to their message, and a record
the row cannot place (older than the row: counted before, or late?) makes the count be read from
the table (a consistent Query of the group's messages after the marker) instead; a row already
current then takes the corrected count in one conditional UpdateItem (the rare case). A row
marked read while it was being moved makes the old row's delete fail (its marker changed): the
new row then takes the marker.

A participant's rows share one partition, so two of their conversations whose last messages carry
the same microsecond would need the same key. When the put finds its key held by another
conversation's row, that participant's row goes one microsecond later: keys stay unique, the
order of the list is kept, and the record is applied instead of failing for ever.

Failures are reported per record (the event source mapping must have
FunctionResponseTypes=["ReportBatchItemFailures"]); see `handle_event` for which record.

Environment: DDB_MESSAGE_TABLE (cruddur-messages), DDB_GSI_NAME (message-group-sk-index),
AWS_DEFAULT_REGION or AWS_REGION, AWS_ENDPOINT_URL (optional, for a local endpoint),
MOVE_ATTEMPTS (4), LOG_LEVEL (INFO).
"""
from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from lib.layout import GROUP_PREFIX, GSI_NAME, HEADER_PREFIX, HEADER_SK, MESSAGE_PREFIX, UNREAD_CAP

# How many groups' headers a container remembers (they never change).
HEADER_CACHE_SIZE = 10_000
# The time one group may take at worst (its reads and writes, each retried by botocore with
# backoff): a group is begun only with this much of the invocation left. The groups left over are
# reported failed, so Lambda retries the batch from them, instead of the invocation timing out and
# every group of the batch being applied again.
TIME_FOR_A_GROUP_MS = 10_000


# -- logging: one JSON object per line -------------------------------------------------------
class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


log = logging.getLogger("cruddur-messaging-stream")
if not log.handlers:  # this file may be loaded more than once in one process (the local worker)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(_JsonFormatter())
    log.addHandler(_handler)
    # Our lines are already JSON; passing them to the root logger (Lambda's, or the worker's)
    # would print each twice, once wrapped in another format.
    log.propagate = False
log.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())


def _log(level: int, message: str, exc_info: bool = False, **fields: Any) -> None:
    log.log(level, message, exc_info=exc_info, extra={"fields": fields})


# -- configuration and the client, made once per container ------------------------------------
@dataclass(frozen=True)
class Config:
    table: str = "cruddur-messages"
    index: str = GSI_NAME
    # Attempts of one group's move when concurrent movers keep cancelling it.
    move_attempts: int = 4


def load_config(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    default = Config()
    return Config(
        table=env.get("DDB_MESSAGE_TABLE") or default.table,
        index=env.get("DDB_GSI_NAME") or default.index,
        move_attempts=max(1, int(env.get("MOVE_ATTEMPTS") or default.move_attempts)),
    )


def make_client(env: Mapping[str, str] | None = None) -> Any:
    """A DynamoDB client: region and optional endpoint from the environment, botocore's standard
    retry mode (throttling and transient errors are retried with backoff before we see them)."""
    env = os.environ if env is None else env
    kwargs: dict[str, Any] = {
        "config": BotoConfig(retries={"mode": "standard", "max_attempts": 4},
                             connect_timeout=2, read_timeout=5),
    }
    region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION")
    if region:
        kwargs["region_name"] = region
    if env.get("AWS_ENDPOINT_URL"):
        kwargs["endpoint_url"] = env["AWS_ENDPOINT_URL"]
    return boto3.session.Session().client("dynamodb", **kwargs)


_runtime: tuple[Any, Config] | None = None


def _get_runtime() -> tuple[Any, Config]:
    # Made on the first invocation rather than at import, and kept for the container's life:
    # warm invocations reuse the client and its connections.
    global _runtime
    if _runtime is None:
        _runtime = (make_client(), load_config())
    return _runtime


def reset() -> None:
    """Forget the cached client and configuration (the next invocation reads the env again)."""
    global _runtime
    _runtime = None


# -- the handler -----------------------------------------------------------------------------
def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    client, config = _get_runtime()
    return handle_event(event, client, config, context)


@dataclass(frozen=True)
class NewMessage:
    group: str
    sk: str
    text: str
    message_uuid: str
    sender: str = ""


class IndexBehind(RuntimeError):
    """The GSI does not yet show every participant's row: try again later."""


def message_of(record: Mapping[str, Any]) -> NewMessage | None:
    """The message a stream record inserted, or None for anything else (other events, other
    items, records without a new image)."""
    if record.get("eventName") != "INSERT":
        return None
    image = (record.get("dynamodb") or {}).get("NewImage") or {}
    pk = image.get("pk", {}).get("S", "")
    if not pk.startswith(MESSAGE_PREFIX) or "message_uuid" not in image:
        return None
    sk = image.get("sk", {}).get("S")
    if not sk:
        return None
    return NewMessage(group=pk[len(MESSAGE_PREFIX):], sk=sk,
                      text=image.get("message", {}).get("S", ""),
                      message_uuid=image["message_uuid"].get("S", ""),
                      sender=image.get("user_uuid", {}).get("S", ""))


def handle_event(event: Mapping[str, Any], client: Any, config: Config,
                 context: Any = None) -> dict[str, list[dict[str, str]]]:
    """Apply a batch of stream records; the same as `lambda_handler` with its dependencies given.

    On failure, the answer names ONE record: the earliest, by position in the batch, of all the
    records of the groups that failed. Lambda retries a shard from the lowest sequence number it
    is given (and a batch's records are in sequence order), so naming more would change nothing;
    naming exactly that one makes the retry start at the first record that might not have been
    applied, so nothing is lost. Records after it that did succeed are replayed too, harmlessly:
    their groups' rows are already at or past them.
    """
    records = list(event.get("Records") or [])
    request_id = getattr(context, "aws_request_id", None)
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

    failed: list[int] = []
    outcomes: dict[str, int] = {}
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    for group, message in newest.items():
        if remaining is not None and remaining() < TIME_FOR_A_GROUP_MS:
            failed.append(first_position[group])  # out of time: this group and the rest, later
            outcomes["postponed"] = outcomes.get("postponed", 0) + 1
            continue
        try:
            outcome = apply_message(client, config, message, list(batches[group].values()))
        except Exception as error:  # one group's failure must not stop the others
            _log(logging.ERROR, "group update failed", exc_info=True, request_id=request_id,
                 message_group_uuid=group, sk=message.sk, error_type=type(error).__name__)
            failed.append(first_position[group])
            continue
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    answer: dict[str, list[dict[str, str]]] = {"batchItemFailures": []}
    if failed:
        retry_from = records[min(failed)]
        answer["batchItemFailures"].append({"itemIdentifier": retry_from["dynamodb"]["SequenceNumber"]})
    _log(logging.INFO, "batch done", request_id=request_id, records=len(records),
         messages=messages, groups=len(newest),
         failed_groups=len(failed), outcomes=outcomes,
         retry_from=answer["batchItemFailures"][0]["itemIdentifier"] if failed else None)
    return answer


# -- one group -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Header:
    """What a group's header item tells: its participants' pks (GRP#<uuid>), the fixed part of
    each one's row (the other participant's uuid and names) when the header carries the
    participants' profiles, and when the group began (no row of it is older)."""
    owners: frozenset[str]
    rows: Mapping[str, Mapping[str, Any]]
    created_at: str


class Unsettled(RuntimeError):
    """The group's rows kept changing under us: try the record again later."""


def apply_message(client: Any, config: Config, message: NewMessage,
                  batch: list[NewMessage] | None = None) -> str:
    """Bring each participant's row of the group to `message`, the newest of `batch` (the group's
    messages in this batch, for the unread counts; just `message` when not given). Returns "moved"
    (something was written), "current" (every row was at or past it already) or "no-rows" (not a
    conversation: no header, and no row anywhere). Raises when it cannot, IndexBehind among
    others."""
    batch = batch or [message]
    header = group_header(client, config, message.group)
    for attempt in range(1, config.move_attempts + 1):
        try:
            by_owner = current_rows(client, config, message, header, settled=attempt > 1)
        except IndexBehind as behind:
            if attempt == config.move_attempts:
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
            moved |= bring_up(client, config, message, owner, rows, header, batch)
        return "moved" if moved else "current"
    raise AssertionError("unreachable")


_headers: "OrderedDict[str, Header]" = OrderedDict()


def group_header(client: Any, config: Config, group: str) -> Header | None:
    """The group's header (a consistent read, then remembered: it never changes); None when the
    group has none (one written by the bootcamp's week-5 backend, or not a conversation)."""
    if group in _headers:
        _headers.move_to_end(group)
        return _headers[group]
    item = client.get_item(TableName=config.table, ConsistentRead=True,
                           Key={"pk": {"S": f"{HEADER_PREFIX}{group}"}, "sk": {"S": HEADER_SK}},
                           ProjectionExpression="participants, profiles, created_at").get("Item")
    if item is None:
        return None
    people = [p["S"] for p in item["participants"]["L"]]
    profiles = item.get("profiles", {}).get("M", {})
    rows: dict[str, dict[str, Any]] = {}
    if len(people) == 2 and all(p in profiles for p in people):
        for me, other in (people, people[::-1]):
            names = profiles[other]["M"]
            rows[f"{GROUP_PREFIX}{me}"] = {
                "pk": {"S": f"{GROUP_PREFIX}{me}"}, "message_group_uuid": {"S": group},
                "user_uuid": {"S": other}, "user_display_name": names["display_name"],
                "user_handle": names["handle"]}
    header = Header(owners=frozenset(f"{GROUP_PREFIX}{p}" for p in people), rows=rows,
                    created_at=item.get("created_at", {}).get("S", ""))
    _headers[group] = header
    while len(_headers) > HEADER_CACHE_SIZE:
        _headers.popitem(last=False)
    return header


def current_rows(client: Any, config: Config, message: NewMessage, header: Header | None,
                 settled: bool) -> dict[str, list[dict[str, Any]]] | None:
    """Each participant's rows of the group, oldest first: as the GSI shows them, and for a
    participant it shows none, once `settled` (after a pause), as the table holds them (a
    consistent read; an empty list when the row was never made and the header says how to make
    it). None when there is no conversation to update. IndexBehind while not settled."""
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for row in group_rows(client, config, message.group):
        by_owner.setdefault(row["pk"]["S"], []).append(row)
    if header is None:  # a week-5 group: its two rows' owners are its participants
        if len(by_owner) >= 2:
            return _oldest_first(by_owner)
        if not by_owner and not has_row(client, config, message.sender, message.group):
            return None
        raise IndexBehind(f"a group without a header shows {len(by_owner)} of its 2 rows")
    by_owner = {owner: rows for owner, rows in by_owner.items() if owner in header.owners}
    missing = header.owners - by_owner.keys()
    if missing and not settled:
        raise IndexBehind(f"no row shown for {len(missing)} of {len(header.owners)} participants")
    for owner in missing:
        rows = owner_rows(client, config, owner, message.group, header.created_at)
        if not rows and owner not in header.rows:
            raise IndexBehind("a participant has no row, and the header cannot make one")
        by_owner[owner] = rows
    return _oldest_first(by_owner)


def _oldest_first(by_owner: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {owner: sorted(rows, key=lambda row: row["sk"]["S"]) for owner, rows in by_owner.items()}


def bring_up(client: Any, config: Config, message: NewMessage, owner: str,
             rows: list[dict[str, Any]], header: Header | None,
             batch: list[NewMessage] | None = None) -> bool:
    """One participant's step, in the order that is safe without a transaction: first the row
    at the message (a conditional put: its key must be free), then the delete of every older row
    of theirs (conditional: it must still be this group's, and the one we copied still carry the
    read marker we read). Between the two the participant has two rows of the group; readers
    keep the newest. A delete that finds its row gone or changed means someone else moved it or
    marked it read meanwhile (or our own delete's response was lost): `reconcile` then reads the
    participant's rows from the table, keeps only the newest, and gives it the latest marker.
    The row carries the participant's unread count and read marker (`unread`). True when it
    wrote."""
    batch = batch or [message]
    latest = rows[-1] if rows else None
    marker, count = unread(latest, batch, owner[len(GROUP_PREFIX):])
    if latest is not None and latest["sk"]["S"] >= message.sk:
        older = rows[:-1]  # leftovers of an interrupted move, if any
        wrote = settle_count(client, config, message.group, owner, latest, marker, count)
    else:
        base = latest if latest is not None else header.rows[owner]  # type: ignore[union-attr]
        if count is None:
            count = count_unread(client, config, message.group, owner, marker, message.sk)
        put_row(client, config, message, owner, {
            **base, "unread_count": {"N": str(count)}, **({"read_up_to": {"S": marker}} if marker else {})})
        older, wrote = rows, True
    for row in older:
        if not delete_row(client, config, message.group, row, marked=row is latest):
            reconcile(client, config, message.group, owner, rows[0]["sk"]["S"])
            return True
        wrote = True
    return wrote



def unread(row: Mapping[str, Any] | None, batch: list[NewMessage], me: str) -> tuple[str, int | None]:
    """(read marker, unread count) the participant's row must carry once `batch` is applied: the
    count is of the other participant's messages newer than the marker, up to the row's last
    message. Sending marks read: the marker moves to the participant's own newest message. The
    count is worked out from the row as read (it counts every message up to its sk) and the
    batch's messages newer than the row; None when that cannot be told (a record older than the
    row came late, or again: counted before or not?), and the count must be read from the table."""
    last = row["sk"]["S"] if row else ""
    counted = int(row.get("unread_count", {}).get("N", "0")) if row else 0
    before = row.get("read_up_to", {}).get("S", "") if row else ""
    marker = max([before, *(m.sk for m in batch if m.sender == me)])
    if marker == before:
        base: int | None = counted
    else:
        base = 0 if marker >= last else None  # what it had counted is read now, or partly
    theirs = [m for m in batch if m.sender != me and m.sk > marker]
    if base is None or any(m.sk < last for m in theirs):
        return marker, None
    return marker, base + sum(1 for m in theirs if m.sk > last)


def count_unread(client: Any, config: Config, group: str, owner: str, marker: str,
                 up_to: str) -> int:
    """The other participant's messages after `marker` up to `up_to`, from the table (a
    consistent Query, oldest first, that stops at `up_to` or at UNREAD_CAP counted)."""
    me = owner[len(GROUP_PREFIX):]
    condition, values = "pk = :pk", {":pk": {"S": f"{MESSAGE_PREFIX}{group}"}}
    if marker:  # else: never read, every message counts
        condition += " AND sk > :marker"
        values[":marker"] = {"S": marker}
    kwargs: dict[str, Any] = {
        "TableName": config.table, "ConsistentRead": True, "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values, "ProjectionExpression": "sk, user_uuid",
    }
    count = 0
    for item in query_items(client, kwargs):
        if item["sk"]["S"] > up_to:
            break
        if item.get("user_uuid", {}).get("S") != me:
            count += 1
            if count >= UNREAD_CAP:
                break
    return count


def settle_count(client: Any, config: Config, group: str, owner: str, row: Mapping[str, Any],
                 marker: str, count: int | None, again: bool = True) -> bool:
    """A row already at or past the batch's newest message still takes what the batch changes of
    its marker and count (a message of theirs, or one of the other's, that came late). Normally
    nothing: True only when it wrote. When the row changed meanwhile (marked read, or moved),
    `reconcile` reads the participant's rows again, unless `again` is False (it is reconciling)."""
    before = row.get("read_up_to", {}).get("S", "")
    counted = int(row.get("unread_count", {}).get("N", "0"))
    if count is None:
        count = count_unread(client, config, group, owner, marker, row["sk"]["S"])
    if (marker, count) == (before, counted):
        return False
    values: dict[str, Any] = {":marker": {"S": marker}, ":count": {"N": str(count)}}
    condition = _still_this_groups(group, before, values)
    try:
        client.update_item(
            TableName=config.table, Key={"pk": row["pk"], "sk": row["sk"]},
            UpdateExpression="SET read_up_to = :marker, unread_count = :count",
            ConditionExpression=condition, ExpressionAttributeValues=values)
    except ClientError as error:
        if _code(error) != "ConditionalCheckFailedException":
            raise
        if not again:
            raise Unsettled(f"the row of {owner} keeps changing") from error
        reconcile(client, config, group, owner, row["sk"]["S"])
    return True


def _still_this_groups(group: str, marker: str | None, values: dict[str, Any]) -> str:
    """A condition that the row is still there and still `group`'s, and when `marker` is given,
    still carries that read marker ("" for none); adds its values to `values`."""
    values[":g"] = {"S": group}
    condition = "attribute_exists(pk) AND message_group_uuid = :g"
    if marker is None:
        return condition
    if not marker:
        return condition + " AND attribute_not_exists(read_up_to)"
    values[":seen"] = {"S": marker}
    return condition + " AND read_up_to = :seen"


def put_row(client: Any, config: Config, message: NewMessage, owner: str,
            base: Mapping[str, Any]) -> None:
    """The participant's row at the message, unless it is there already. A participant's rows
    share one partition, so two of their conversations whose last messages carry the same
    microsecond would need the same key: when another conversation's row holds it, this one goes
    a microsecond later (keys stay unique, the list keeps its order)."""
    for shift in range(config.move_attempts * 4):
        row = {**base, "sk": {"S": later(message.sk, shift)}, "message": {"S": message.text}}
        try:
            client.put_item(TableName=config.table, Item=row,
                            ConditionExpression="attribute_not_exists(pk)",
                            ReturnValuesOnConditionCheckFailure="ALL_OLD")
            return
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            held = (error.response.get("Item") or {}).get("message_group_uuid", {}).get("S")
            if held is None or held == message.group:
                return  # already there: a duplicate record, a concurrent mover, or our own retry
            _log(logging.INFO, "row key held by another conversation, one microsecond later",
                 message_group_uuid=message.group, sk=message.sk, owner=owner)
    raise Unsettled(f"no free key for {owner} near {message.sk}")


def delete_row(client: Any, config: Config, group: str, row: Mapping[str, Any],
               marked: bool = False) -> bool:
    """Delete one of the group's rows; False when it is no longer there (or no longer this
    group's: another conversation's row may hold its key by now), or, when `marked`, no longer
    carries the read marker it was read with (it was marked read meanwhile)."""
    values: dict[str, Any] = {}
    condition = _still_this_groups(
        group, row.get("read_up_to", {}).get("S", "") if marked else None, values)
    try:
        client.delete_item(TableName=config.table, Key={"pk": row["pk"], "sk": row["sk"]},
                           ConditionExpression=condition, ExpressionAttributeValues=values)
        return True
    except ClientError as error:
        if _code(error) != "ConditionalCheckFailedException":
            raise
        return False


def reconcile(client: Any, config: Config, group: str, owner: str, since: str) -> None:
    """The participant's rows of the group from `since` on, read from the table (consistently),
    down to the newest one, which takes the latest read marker any of them carries and its count
    read again from the table. What a stale index read, a concurrent mover, a read marked during a
    move or a lost response leaves behind is put right here, never by guessing from the index."""
    rows = owner_rows(client, config, owner, group, since)
    if not rows:
        return
    newest = rows[-1]
    marker = max(row.get("read_up_to", {}).get("S", "") for row in rows)
    # counted again from the table too: what was counted from a stale read may be off
    settle_count(client, config, group, owner, newest, marker, None, again=False)
    for row in rows[:-1]:
        delete_row(client, config, group, row)
    _log(logging.INFO, "rows read again from the table", message_group_uuid=group, owner=owner,
         rows=len(rows))


def owner_rows(client: Any, config: Config, owner: str, group: str,
               since: str = "") -> list[dict[str, Any]]:
    """The participant's rows of the group with sk >= `since`, oldest first, from the table
    itself (consistently). Reads their partition from that time on: only for the rare cases the
    index cannot settle."""
    return query_all(client, _owner_rows_query(config, owner, group, since))


def _owner_rows_query(config: Config, owner: str, group: str, since: str = "") -> dict[str, Any]:
    condition, values = "pk = :pk", {":pk": {"S": owner}, ":g": {"S": group}}
    if since:
        condition += " AND sk >= :since"
        values[":since"] = {"S": since}
    return {"TableName": config.table, "ConsistentRead": True, "KeyConditionExpression": condition,
            "FilterExpression": "message_group_uuid = :g", "ExpressionAttributeValues": values}


def has_row(client: Any, config: Config, user: str, group: str) -> bool:
    """Whether `user` has a row for `group`, read from the table itself (consistently): the rare
    check of a group that has neither a header nor a row in the index. Stops at the first row."""
    if not user:
        return False
    kwargs = {**_owner_rows_query(config, f"{GROUP_PREFIX}{user}", group), "ProjectionExpression": "pk"}
    return next(query_items(client, kwargs), None) is not None


def group_rows(client: Any, config: Config, group: str) -> list[dict[str, Any]]:
    """The group's rows through the GSI (normally two, so normally one page)."""
    return query_all(client, {
        "TableName": config.table, "IndexName": config.index,
        "KeyConditionExpression": "message_group_uuid = :g",
        "ExpressionAttributeValues": {":g": {"S": group}},
    })


def query_all(client: Any, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of a Query, page after page."""
    return list(query_items(client, kwargs))


def query_items(client: Any, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A Query's items, page after page; the next page is asked for only when the caller goes
    on past this one's last item."""
    while True:
        response = client.query(**kwargs)
        yield from response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        kwargs = {**kwargs, "ExclusiveStartKey": response["LastEvaluatedKey"]}


def later(sk: str, microseconds: int) -> str:
    """`sk` (ISO-8601 with microseconds) moved on by `microseconds`, in the same format."""
    if not microseconds:
        return sk
    moment = datetime.fromisoformat(sk) + timedelta(microseconds=microseconds)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")
