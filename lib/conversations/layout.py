"""The single table's layout: the one place its keys, its items' shapes and its times are made.

The conversation store (this package), both Lambdas, the scripts and the bench all build and read
items through these names and functions, and turn items into the domain's values here
(`message_of_item`, `conversation_of_row`). Nothing here reads or writes the table.

  group row    pk GRP#<owner user uuid>     sk <time of last message>
               message_group_uuid, message, and user_uuid/user_display_name/user_handle of the
               OTHER participant; read_up_to (the owner's read marker, a message's sk) and
               unread_count (the other's messages after it, up to this row's sk, deleted ones
               not counted; absent: 0). `message` is the text of the last message that is not
               deleted: message_sk names that message when it is not the one at the row's sk
               ("" when none is left), message_edited_at the edit of it the row shows.
               The only items with `message_group_uuid`, so the GSI
               `message-group-sk-index` holds exactly the two rows of each group.
  message      pk MSG#<message_group_uuid>  sk <created time>
               message_uuid (naming the created time: domain/message_ids.py), message, and
               user_uuid/user_display_name/user_handle of the sender; edited_at once its sender
               changed its text; deleted_at once they deleted it (message is then "": the item
               stays, as a tombstone that pattern A's reads filter out); idempotency_key when it
               was sent with one (so that its deletion erases that record's fingerprint too).
  group header pk GROUP#<message_group_uuid> sk GROUP
               participants: the two user uuids; profiles: each one's display_name and handle;
               first_message_uuid.
               Written once, first of a group's items: its conditional put is what makes two
               concurrent first messages create one group, and a consistent GetItem of it answers
               "who may read or post here".
  idempotency  pk IDEM#<user uuid>           sk <Idempotency-Key>
               fingerprint of the request, and the message it made (group, uuid, created time),
               written before that message; kept for a day (attribute expires_at, TTL). Once
               that message is deleted: deleted_at, and no fingerprint (a hash of the text).
  layout       pk META#layout                sk META
               version: 2 on a table whose every group has its header (made by this code, or
               brought there by bin/ddb/migrate).

Tables written by the bootcamp's week-5 backend hold groups without a header: a random uuid4
message_group_uuid, its two GRP# rows and its MSG# items. Until bin/ddb/migrate gives each its
header (and the pair's derived uuid an alias header, GROUP#<derived uuid> with
message_group_uuid = the old group), such a group's participants are its rows' owners, and a
first message to a user looks for an old group of the pair before creating one.
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable, Mapping

from domain import message_ids, unread
from domain.conversations import Conversation, Message
from domain.times import epoch_now, now_iso  # epoch_now: the clock DynamoDB's TTL reads

# The table's name where no setting names another (the API's DDB_MESSAGE_TABLE, the Lambdas' and
# the scripts' alike), and its index's.
TABLE_NAME = "cruddur-messages"
GSI_NAME = "message-group-sk-index"
GROUP_PREFIX = "GRP#"
MESSAGE_PREFIX = "MSG#"
HEADER_PREFIX = "GROUP#"
HEADER_SK = "GROUP"
IDEMPOTENCY_PREFIX = "IDEM#"
LAYOUT_KEY = {"pk": "META#layout", "sk": "META"}
LAYOUT_VERSION = 2

# A group row's stamp of the edit whose text it shows (absent: that message's text as sent).
EDIT_STAMP = "message_edited_at"
# A group row's note of which message's text it shows, by created time, when that is not the one
# at its sk: an earlier one once the last ones were deleted ("" for none left), or the message a
# row put a microsecond later (a key held by another conversation) is at.
SHOWN = "message_sk"
# A message item's mark of its deletion (its text is "" then), and the Idempotency-Key it was
# sent with.
DELETED = "deleted_at"
SENT_WITH_KEY = "idempotency_key"
# A query's filter for the messages that are not deleted.
NOT_DELETED = {DELETED: None}

# The attribute DynamoDB's TTL reads (idempotency records only), and how long a record is kept.
TTL_ATTRIBUTE = "expires_at"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

# Fixed namespace for deriving a group's uuid from its participants (uuid5).
GROUP_NAMESPACE = uuid.UUID("6f1c3c55-8d3e-4a53-9d0b-6f8f3b1a2c4d")


# -- keys ------------------------------------------------------------------------------------
def group_uuid_for(user_a: str, user_b: str) -> str:
    """The one message_group_uuid two users share, whoever writes first (so "do these two already
    share a group?" needs no lookup)."""
    low, high = sorted([str(user_a), str(user_b)])
    return str(uuid.uuid5(GROUP_NAMESPACE, f"{low}:{high}"))


def group_pk(user_uuid: str) -> str:
    return f"{GROUP_PREFIX}{user_uuid}"


def owner_of(row: Mapping[str, Any]) -> str:
    """The user uuid whose group row this is."""
    return row["pk"][len(GROUP_PREFIX):]


def owners_of(rows: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The users whose rows these are, sorted: a group's participants, when they are its two rows
    (a week-5 group's only record of who takes part)."""
    return tuple(sorted({owner_of(row) for row in rows}))


def message_pk(message_group_uuid: str) -> str:
    return f"{MESSAGE_PREFIX}{message_group_uuid}"


def message_key(message_group_uuid: str, created_at: str) -> dict[str, str]:
    return {"pk": message_pk(message_group_uuid), "sk": created_at}


def is_message(item: Mapping[str, Any]) -> bool:
    return str(item.get("pk", "")).startswith(MESSAGE_PREFIX) and "message_uuid" in item


def is_group_row(item: Mapping[str, Any]) -> bool:
    return str(item.get("pk", "")).startswith(GROUP_PREFIX) and "message_group_uuid" in item


def message_group_uuid_of(item: Mapping[str, Any]) -> str:
    """The group a message item belongs to (messages carry it in their key only)."""
    return item["pk"][len(MESSAGE_PREFIX):]


def header_key(message_group_uuid: str) -> dict[str, str]:
    return {"pk": f"{HEADER_PREFIX}{message_group_uuid}", "sk": HEADER_SK}


def idempotency_key(user_uuid: str, key: str) -> dict[str, str]:
    return {"pk": f"{IDEMPOTENCY_PREFIX}{user_uuid}", "sk": key}


# -- items -----------------------------------------------------------------------------------
def group_row(owner_uuid: str, other: Mapping[str, str], message_group_uuid: str,
              message: str, sk: str, unread_count: int | None = None,
              read_up_to: str | None = None) -> dict[str, Any]:
    """The group row `owner` sees: it names the other participant, and (when given) how many of
    the other's messages after the owner's read marker it counts, up to its own sk."""
    row: dict[str, Any] = {
        "pk": group_pk(owner_uuid),
        "sk": sk,
        "message_group_uuid": message_group_uuid,
        "message": message,
        "user_uuid": str(other["uuid"]),
        "user_display_name": other["display_name"],
        "user_handle": other["handle"],
    }
    if unread_count is not None:
        row["unread_count"] = unread_count
    if read_up_to:
        row["read_up_to"] = read_up_to
    return row


def message_rows(sender: Mapping[str, str], recipient: Mapping[str, str], message_group_uuid: str,
                 message: str, sk: str) -> list[dict[str, Any]]:
    """Both rows of a conversation whose last message is `message`, by `sender`, as a first
    message leaves them: read by its sender (sending marks read), one unread message for the
    recipient (who had read everything before it)."""
    return [group_row(sender["uuid"], recipient, message_group_uuid, message, sk, 0, sk),
            group_row(recipient["uuid"], sender, message_group_uuid, message, sk, 1)]


def message_item(message_group_uuid: str, sender: Mapping[str, str], message: str,
                 created_at: str, message_uuid: str | None = None,
                 idempotency_key: str | None = None) -> dict[str, str]:
    item = {
        **message_key(message_group_uuid, created_at),
        "message_uuid": message_uuid or message_ids.new(created_at),
        "message": message,
        "user_uuid": str(sender["uuid"]),
        "user_display_name": sender["display_name"],
        "user_handle": sender["handle"],
    }
    if idempotency_key:
        item[SENT_WITH_KEY] = idempotency_key
    return item


def shown_of(row: Mapping[str, Any]) -> str:
    """The created time of the message whose text a group row shows ("" for none left)."""
    return row[SHOWN] if SHOWN in row else row["sk"]


def header_item(message_group_uuid: str, participants: Iterable[str], created_at: str,
                profiles: Mapping[str, Mapping[str, str]] | None = None,
                first_message_uuid: str | None = None) -> dict:
    """The group's header. `profiles` (user uuid -> display_name and handle) lets the stream
    Lambda make a participant's row should the API stop before writing it; `first_message_uuid`
    lets the request that creates the group tell its own header (found by the SDK's retry of a
    put whose response was lost) from a concurrent creator's."""
    item = {**header_key(message_group_uuid), "participants": sorted(str(p) for p in participants),
            "created_at": created_at}
    if first_message_uuid:
        item["first_message_uuid"] = first_message_uuid
    if profiles:
        item["profiles"] = {str(u): {"display_name": p["display_name"], "handle": p["handle"]}
                            for u, p in profiles.items()}
    return item


def profiles_of(*users: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """header_item's `profiles` of users as the API holds them (uuid, display_name, handle)."""
    return {str(u["uuid"]): {"display_name": u["display_name"], "handle": u["handle"]} for u in users}


def idempotency_item(user_uuid: str, key: str, fingerprint: str, group: str, message_uuid: str,
                     created_at: str, named: bool) -> dict[str, Any]:
    """Which message a request with this Idempotency-Key makes. The group goes under another name
    than message_group_uuid, the GSI's key: only group rows are in the index."""
    return {**idempotency_key(user_uuid, key), "fingerprint": fingerprint, "group": group,
            "message_uuid": message_uuid, "created_at": created_at, "named": named,
            TTL_ATTRIBUTE: epoch_now() + IDEMPOTENCY_TTL_SECONDS}


def expired(item: Mapping[str, Any]) -> bool:
    """Whether TTL may delete the item by now (an item without expires_at never expires)."""
    return TTL_ATTRIBUTE in item and int(item[TTL_ATTRIBUTE]) < epoch_now()


def layout_item() -> dict[str, Any]:
    """The mark of a table in the current layout (every group has its header)."""
    return {**LAYOUT_KEY, "version": LAYOUT_VERSION, "written_at": now_iso()}


def unread_of(row: Mapping[str, Any] | None) -> int:
    """A group row's unread count as shown: 0 for a row without one (written before there were
    counts), at most the cap (domain/unread.py)."""
    return unread.capped(row.get("unread_count") or 0) if row else 0


def seen_of(row: Mapping[str, Any] | None) -> unread.Seen | None:
    """Where the row's owner is in the conversation, for the unread rules."""
    if row is None:
        return None
    return unread.Seen(row["sk"], row.get("read_up_to", ""), int(row.get("unread_count") or 0))


# -- items as the domain's values ----------------------------------------------------------------
def message_of_item(item: Mapping[str, Any], group: str) -> Message:
    """A message item of `group` as the domain's Message."""
    return Message(uuid=item["message_uuid"], message_group_uuid=group,
                   display_name=item["user_display_name"],
                   handle=item["user_handle"], text=item["message"], created_at=item["sk"],
                   sender_uuid=item.get("user_uuid", ""), edited_at=item.get("edited_at"),
                   deleted_at=item.get(DELETED), idempotency_key=item.get(SENT_WITH_KEY))


def conversation_of_row(row: Mapping[str, Any]) -> Conversation:
    """A group row as the conversation its owner sees."""
    return Conversation(message_group_uuid=row["message_group_uuid"],
                        display_name=row["user_display_name"], handle=row["user_handle"],
                        last_message=row["message"], last_message_at=row["sk"],
                        unread_count=unread_of(row), other_uuid=row.get("user_uuid", ""),
                        last_message_edited_at=row.get(EDIT_STAMP), shown_message_at=row.get(SHOWN))


def table_definition(name: str, provisioned: bool = False, read_capacity: int = 5,
                     write_capacity: int = 5) -> dict[str, Any]:
    """CreateTable arguments for the messages table, its GSI and its stream."""
    definition: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "message_group_uuid", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [{
            "IndexName": GSI_NAME,
            "KeySchema": [
                {"AttributeName": "message_group_uuid", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    }
    if provisioned:
        throughput = {"ReadCapacityUnits": read_capacity, "WriteCapacityUnits": write_capacity}
        definition["BillingMode"] = "PROVISIONED"
        definition["ProvisionedThroughput"] = throughput
        definition["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] = dict(throughput)
    else:
        definition["BillingMode"] = "PAY_PER_REQUEST"
    return definition
