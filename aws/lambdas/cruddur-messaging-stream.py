"""cruddur-messaging-stream: keeps each group's two rows pointing at its newest message.

Triggered by the messages table's stream (view type NEW_IMAGE). A thin handler: the work is
`lib.conversations.stream`, the same code the API's conversation store is made of (the layout,
the unread count, the DynamoDB helper). bin/aws/deploy packages that code beside this file
(boto3 is Lambda's); the local stream worker loads this file and runs it as Lambda would.

Failures are reported per record (the event source mapping must have
FunctionResponseTypes=["ReportBatchItemFailures"]); see `apply_batch` for which record.

Environment: DDB_MESSAGE_TABLE (cruddur-messages), DDB_GSI_NAME (message-group-sk-index),
AWS_DEFAULT_REGION or AWS_REGION, AWS_ENDPOINT_URL (optional, for a local endpoint),
MOVE_ATTEMPTS (4), GROUPS_AT_ONCE (8: how many groups of a batch are moved at once), LOG_LEVEL
(INFO).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from lib.cache import Cache
from lib.conversations import participants, stream
from lib.conversations.layout import GSI_NAME, TABLE_NAME
from lib.conversations.records import NewMessage  # noqa: F401  (part of this module's interface)
from lib.ddb import Ddb
from lib.lambda_support import dynamodb_client, json_logger, table_names


log = json_logger(stream.__name__)


# -- configuration and the client, made once per container ------------------------------------
@dataclass(frozen=True)
class Config:
    table: str = TABLE_NAME
    index: str = GSI_NAME
    # Attempts of one group's move when concurrent movers keep cancelling it.
    move_attempts: int = 4
    # Groups of one batch moved at once: a backlog's batch holds many groups, each a few calls.
    groups_at_once: int = 8


def load_config(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    default = Config()
    table, index = table_names(env)
    return Config(
        table=table,
        index=index,
        move_attempts=max(1, int(env.get("MOVE_ATTEMPTS") or default.move_attempts)),
        groups_at_once=max(1, int(env.get("GROUPS_AT_ONCE") or default.groups_at_once)),
    )


def make_client(env: Mapping[str, str] | None = None) -> Any:
    """The function's DynamoDB client, with a connection for each group moved at once."""
    env = os.environ if env is None else env
    return dynamodb_client(env, load_config(env).groups_at_once)


_runtime: tuple[Any, Config] | None = None
# What each group's header says, remembered for the container's life (it never changes).
_groups: "Cache[participants.Header]" = Cache(participants.CACHE_SIZE)


def _get_runtime() -> tuple[Any, Config]:
    # Made on the first invocation rather than at import, and kept for the container's life:
    # warm invocations reuse the client and its connections.
    global _runtime
    if _runtime is None:
        _runtime = (make_client(), load_config())
    return _runtime


def reset() -> None:
    """Forget the cached client, configuration and headers (the next invocation reads the env
    again)."""
    global _runtime
    _runtime = None
    _groups.clear()


def mover(client: Any, config: Config) -> stream.RowMover:
    table = Ddb(config.table, client)
    return stream.RowMover(table, participants.Participants(table, config.index, _groups), config.move_attempts)


# -- the handler -----------------------------------------------------------------------------
def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    client, config = _get_runtime()
    return handle_event(event, client, config, context)


def handle_event(event: Mapping[str, Any], client: Any, config: Config,
                 context: Any = None) -> dict[str, list[dict[str, str]]]:
    """Apply a batch of stream records; the same as `lambda_handler` with its dependencies given."""
    return stream.apply_batch(list(event.get("Records") or []), mover(client, config),
                              getattr(context, "get_remaining_time_in_millis", None),
                              getattr(context, "aws_request_id", None), config.groups_at_once)


def apply_message(client: Any, config: Config, message: NewMessage,
                  batch: list[NewMessage] | None = None) -> str:
    """One group's rows brought to `message` (see RowMover.apply)."""
    return mover(client, config).apply(message, batch)
