"""cruddur-messaging-stream: keeps each group's two rows pointing at its newest message.

Triggered by the messages table's stream (view type NEW_IMAGE). This file ships alone, with only
boto3 and the standard library, so it carries its own copy of the few layout names it needs
(the layout itself is documented in lib/ddb.py):

  message    pk MSG#<message_group_uuid>  sk <created time>  message_uuid, message, sender ...
  group row  pk GRP#<owner uuid>          sk <time of last message>  message_group_uuid, message,
             the other participant ...  (the only items with message_group_uuid, so the GSI
             message-group-sk-index holds exactly the two rows of each group)

Per batch, only INSERTs of messages count, and per group only the newest one: a group row's sk is
the time of its last message, so applying the newest message makes every older one of the batch
moot. For each such group: who its participants are (the group's header item, GROUP#<uuid>, read
consistently once and cached: it never changes), one Query of the GSI for its rows, then one
TransactWriteItems that,
for every row older than the message, deletes the row (it must still exist) and puts it at the
new sk with the new text (that key must be free). Rows already at or past the message are left
alone, so older, duplicate and replayed events never overwrite a newer state, and since each move
is a delete and a put in one transaction a participant never has two rows. Normal case: two
DynamoDB calls per group per batch, however many messages the batch holds (three the first time
a container meets a group).

The GSI is eventually consistent: it may not yet show a row just written, or still show one just
moved. So it is trusted only where that is safe. A row it shows at or past the message is at
least that far in the table (rows only move forward, and the index only lags). A row it shows
that has moved makes the transaction's conditions fail, and the group is read again. A participant
whose row it does not show at all makes the group "behind": read again after a pause, and if it is
still behind, the record is reported failed, to be retried; it is never reported done. Groups
written before there were header items (the bootcamp's week-5 backend) have exactly two
participants, each with a row: the index must show both.

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
from typing import Any, Mapping

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

MESSAGE_PREFIX = "MSG#"
GROUP_PREFIX = "GRP#"
HEADER_PREFIX = "GROUP#"
HEADER_SK = "GROUP"
# How many groups' participants a container remembers (they never change).
PARTICIPANTS_CACHE_SIZE = 10_000
# Cancellation reasons that mean "someone else moved these rows meanwhile": re-read and retry.
RACE_REASONS = {"ConditionalCheckFailed", "TransactionConflict"}


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
    index: str = "message-group-sk-index"
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

    failed: list[int] = []
    outcomes: dict[str, int] = {}
    for group, message in newest.items():
        try:
            outcome = apply_message(client, config, message)
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
def apply_message(client: Any, config: Config, message: NewMessage) -> str:
    """Move the group's rows that are older than `message` to it. Returns "moved", "current"
    (nothing was older) or "no-rows" (not a conversation: no header, and no row anywhere).
    Raises when it cannot (after `move_attempts` tries), IndexBehind among others."""
    shifts: dict[str, int] = {}  # owner pk -> microseconds past message.sk (key collisions)
    owners = expected_owners(client, config, message.group)
    for attempt in range(1, config.move_attempts + 1):
        try:
            rows = visible_rows(client, config, message, owners)
        except IndexBehind as behind:
            if attempt == config.move_attempts:
                raise
            _log(logging.INFO, "index behind, reading again", message_group_uuid=message.group,
                 attempt=attempt, reason=str(behind))
            time.sleep(random.uniform(0.05, 0.1 * 2 ** attempt))
            continue
        if rows is None:
            _log(logging.WARNING, "not a conversation: no header and no rows",
                 message_group_uuid=message.group, sk=message.sk)
            return "no-rows"
        operations = plan_moves(config.table, rows, message, shifts)
        if not operations:
            return "current"
        try:
            client.transact_write_items(TransactItems=operations)
            return "moved"
        except ClientError as error:
            if attempt == config.move_attempts:
                raise
            taken = _keys_held_by_other_groups(error, operations, message.group)
            if taken:
                for owner in taken:
                    shifts[owner] = shifts.get(owner, 0) + 1
                _log(logging.INFO, "row key held by another conversation, one microsecond later",
                     message_group_uuid=message.group, sk=message.sk, owners=sorted(taken))
                continue
            if not _is_race(error):
                raise
            # A concurrent mover got there first (or the GSI, which is eventually consistent,
            # showed a row that had just moved): read again and redo the plan.
            _log(logging.INFO, "group moved concurrently, retrying", message_group_uuid=message.group,
                 attempt=attempt, reasons=_reason_codes(error))
            time.sleep(random.uniform(0, 0.05 * 2 ** attempt))
    raise AssertionError("unreachable")


_participants: "OrderedDict[str, frozenset[str]]" = OrderedDict()


def expected_owners(client: Any, config: Config, group: str) -> frozenset[str] | None:
    """The pks (GRP#<user uuid>) of the group's participants, from its header item (a consistent
    read, then remembered: participants never change); None when the group has no header (one
    written by the bootcamp's week-5 backend, or not a conversation at all)."""
    if group in _participants:
        _participants.move_to_end(group)
        return _participants[group]
    item = client.get_item(TableName=config.table, ConsistentRead=True,
                           Key={"pk": {"S": f"{HEADER_PREFIX}{group}"}, "sk": {"S": HEADER_SK}},
                           ProjectionExpression="participants").get("Item")
    if item is None:
        return None
    owners = frozenset(f"{GROUP_PREFIX}{p['S']}" for p in item["participants"]["L"])
    _participants[group] = owners
    while len(_participants) > PARTICIPANTS_CACHE_SIZE:
        _participants.popitem(last=False)
    return owners


def visible_rows(client: Any, config: Config, message: NewMessage,
                 owners: frozenset[str] | None) -> list[dict[str, Any]] | None:
    """The group's rows as the GSI shows them, once it shows one for every participant; None when
    there is no conversation to update. IndexBehind while a participant's row is not shown."""
    rows = group_rows(client, config, message.group)
    shown = {row["pk"]["S"] for row in rows}
    if owners is not None:
        missing = owners - shown
        if missing:
            raise IndexBehind(f"no row shown for {len(missing)} of {len(owners)} participants")
        return [row for row in rows if row["pk"]["S"] in owners]
    if len(shown) >= 2:
        return rows  # a week-5 group: its two participants' rows
    if not shown and not has_row(client, config, message.sender, message.group):
        return None
    raise IndexBehind(f"a group without a header shows {len(shown)} of its 2 rows")


def has_row(client: Any, config: Config, user: str, group: str) -> bool:
    """Whether `user` has a row for `group`, read from the table itself (consistently): the rare
    check of a group that has neither a header nor a row in the index."""
    if not user:
        return False
    kwargs: dict[str, Any] = {
        "TableName": config.table, "ConsistentRead": True,
        "KeyConditionExpression": "pk = :pk", "FilterExpression": "message_group_uuid = :g",
        "ExpressionAttributeValues": {":pk": {"S": f"{GROUP_PREFIX}{user}"}, ":g": {"S": group}},
        "ProjectionExpression": "pk",
    }
    while True:
        response = client.query(**kwargs)
        if response.get("Items"):
            return True
        if "LastEvaluatedKey" not in response:
            return False
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def group_rows(client: Any, config: Config, group: str) -> list[dict[str, Any]]:
    """The group's rows through the GSI (normally two, so normally one page)."""
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": config.table, "IndexName": config.index,
        "KeyConditionExpression": "message_group_uuid = :g",
        "ExpressionAttributeValues": {":g": {"S": group}},
    }
    while True:
        response = client.query(**kwargs)
        rows.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return rows
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def plan_moves(table: str, rows: list[dict[str, Any]], message: NewMessage,
               shifts: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """TransactWriteItems operations that bring every participant's row to `message`.

    Each participant (pk) should have exactly one row. Their newest row is moved when older than
    the message; any other row of theirs is a leftover and is deleted, so a participant ends with
    one row whatever state was found. `shifts` puts a participant's new row that many
    microseconds after the message, when its exact key is held by another conversation."""
    shifts = shifts or {}
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_owner.setdefault(row["pk"]["S"], []).append(row)
    operations: list[dict[str, Any]] = []
    for owner, owned in by_owner.items():
        owned.sort(key=lambda row: row["sk"]["S"])
        latest, leftovers = owned[-1], owned[:-1]
        if latest["sk"]["S"] < message.sk:
            leftovers.append(latest)
            sk = later(message.sk, shifts.get(owner, 0))
            moved = {**latest, "sk": {"S": sk}, "message": {"S": message.text}}
            operations.append({"Put": {
                "TableName": table, "Item": moved,
                # the new key must be free: if it is not, someone already put this row there,
                # or (seen in the item returned) another conversation of this owner holds it
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }})
        for row in leftovers:
            operations.append({"Delete": {
                "TableName": table,
                "Key": {"pk": row["pk"], "sk": row["sk"]},
                # the row must still be there, and still be this group's: otherwise someone else
                # moved it since our read, and our plan is stale
                "ConditionExpression": "attribute_exists(pk) AND message_group_uuid = :g",
                "ExpressionAttributeValues": {":g": {"S": message.group}},
            }})
    return operations


def later(sk: str, microseconds: int) -> str:
    """`sk` (ISO-8601 with microseconds) moved on by `microseconds`, in the same format."""
    if not microseconds:
        return sk
    moment = datetime.fromisoformat(sk) + timedelta(microseconds=microseconds)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _keys_held_by_other_groups(error: ClientError, operations: list[dict[str, Any]],
                               group: str) -> set[str]:
    """Owners whose put was refused because another conversation's row holds that key."""
    reasons = error.response.get("CancellationReasons") or []
    owners: set[str] = set()
    for operation, reason in zip(operations, reasons):
        held_by = (reason.get("Item") or {}).get("message_group_uuid", {}).get("S")
        if ("Put" in operation and reason.get("Code") == "ConditionalCheckFailed"
                and held_by is not None and held_by != group):
            owners.add(operation["Put"]["Item"]["pk"]["S"])
    return owners


def _reason_codes(error: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]


def _is_race(error: ClientError) -> bool:
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    codes = {c for c in _reason_codes(error) if c != "None"}
    return bool(codes) and codes <= RACE_REASONS
