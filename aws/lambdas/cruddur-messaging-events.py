"""cruddur-messaging-events: turns the messages table's stream into each user's live events.

Triggered by the table's stream through its own mapping (aws/template.yaml, EventsMapping: no
batching window, so a message is an event at once; its filter passes new messages and written
group rows). Each record becomes events (lib/conversations/events.py, by domain/live_events.py's
rule; a message's go to both participants, lib/conversations/participants.py), and a
batch's events are logged in one PostgreSQL transaction (lib/event_log.py: numbered per user,
duplicates skipped, a NOTIFY at commit that wakes the API processes holding those users'
streams). A delivery of the same records again logs nothing new.

Failures: a record whose week-5 group the index does not show yet is reported (with
ReportBatchItemFailures) so Lambda retries from it; the events of the records before it are
logged. A database failure fails the whole batch, which Lambda retries.

Environment: DDB_MESSAGE_TABLE (cruddur-messages), DDB_GSI_NAME (message-group-sk-index),
CONNECTION_URL or CONNECTION_SECRET_ARN, AWS_DEFAULT_REGION or AWS_REGION, AWS_ENDPOINT_URL
(optional, for a local endpoint), LOG_LEVEL (INFO).
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import psycopg

from domain.live_events import NewEvent
from lib import event_log
from lib.conversations import events
from lib.conversations.participants import Participants
from lib.conversations.rows import IndexBehind
from lib.lambda_support import OneConnection, json_logger, messages_table

log = json_logger("cruddur-messaging-events")

# How often a container deletes events past the retention window (any container may: the
# statement is idempotent), and for how long at most in one invocation (the rest waits for the
# next purge).
PURGE_EVERY_SECONDS = 600
PURGE_SECONDS = 2.0
# Bounds on what PostgreSQL may make an invocation wait for, well within its time budget
# (aws/template.yaml, EventsFunction Timeout: 30 s): a user's head row locked elsewhere, a slow
# statement, a transaction left open by a connection that froze. Past one, the statement fails,
# the batch's one transaction is rolled back whole, and Lambda gives the batch again: its events
# are logged once, never in part.
LOCK_TIMEOUT_MS = 3000
STATEMENT_TIMEOUT_MS = 8000
IDLE_IN_TRANSACTION_MS = 10000
BOUNDS = (f"-c lock_timeout={LOCK_TIMEOUT_MS} -c statement_timeout={STATEMENT_TIMEOUT_MS} "
          f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}")

_participants: Participants | None = None
_db = OneConnection(options=BOUNDS)
_next_purge = 0.0


def _runtime() -> Participants:
    # Made on the first invocation and kept for the container's life, with the headers it read.
    global _participants
    if _participants is None:
        _participants = Participants(*messages_table())
    return _participants


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    global _next_purge
    records = list(event.get("Records") or [])
    participants = _runtime().both
    found: list[NewEvent] = []
    failures: list[dict[str, str]] = []
    for record in records:
        try:
            found.extend(events.events_of(record, participants))
        except IndexBehind as behind:
            # the records from this one on are given again; those before it are logged now
            log.info("index behind, retrying from this record", extra={"fields": {"reason": str(behind)}})
            failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            break
    try:
        heads = event_log.append(_db.get(), found)
    except psycopg.Error:
        _db.forget()
        raise  # the whole batch again: its events are logged once however often it comes
    if time.monotonic() >= _next_purge:
        _next_purge = time.monotonic() + PURGE_EVERY_SECONDS
        try:
            event_log.purge(_db.get(), until=time.monotonic() + PURGE_SECONDS)
        except psycopg.Error as error:  # the batch is logged; the purge is tried again later
            log.warning("purge failed", extra={"fields": {"reason": str(error).splitlines()[0] if str(error) else ""}})
            _db.forget()
    log.info("batch done", extra={"fields": {
        "request_id": getattr(context, "aws_request_id", None), "records": len(records),
        "events": len(found), "users": len(heads),
        "retry_from": failures[0]["itemIdentifier"] if failures else None}})
    return {"batchItemFailures": failures}
