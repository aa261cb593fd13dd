"""Making the messages table, or completing whatever of it is missing: for the scripts
(bin/ddb/schema-load), the local stack and the tests. The API and the Lambdas never call it."""
from __future__ import annotations

from lib.conversations import layout, week5
from lib.ddb import Ddb, StoreError

CREATED = "created the table"


def create_table(table: Ddb, provisioned: bool = False, read_capacity: int = 5,
                 write_capacity: int = 5) -> bool:
    """set_up_table, for callers that only ask whether the table was made."""
    done = set_up_table(table, provisioned, read_capacity, write_capacity)
    return any(step.startswith(CREATED) for step in done)


def set_up_table(table: Ddb, provisioned: bool = False, read_capacity: int = 5,
                 write_capacity: int = 5, index: str = layout.GSI_NAME) -> list[str]:
    """Make the table, or complete whatever of it is missing: the index, the stream (new
    images), TTL on expires_at, the layout mark. Each run checks everything, so a run that
    stopped half-way (Ctrl-C, a missing permission, a wait that timed out) is completed by
    the next. Returns what it did, in words (empty: nothing was missing)."""
    done: list[str] = []
    definition = layout.table_definition(table.table, provisioned, read_capacity, write_capacity)
    described = table.describe()
    if described is None:
        table.create_table(definition)
        done.append(f"{CREATED}, its index and its stream")
        described = table.describe() or {}
    # First, whatever fails after it: an empty table marked now is never taken for a week-5
    # table by a run that stopped half-way.
    if week5.layout_version(table) < layout.LAYOUT_VERSION:
        if table.is_empty():
            table.put(layout.layout_item())  # an empty table holds no group without a header
            done.append("wrote the layout mark (the table is in the current layout)")
        else:
            done.append("no layout mark, and the table holds items: if the bootcamp's week-5 "
                        "backend wrote them, bin/ddb/migrate brings them to the current layout "
                        "(and writes the mark)")
    indexes = {i["IndexName"] for i in described.get("GlobalSecondaryIndexes") or []}
    if index not in indexes:
        [wanted] = definition["GlobalSecondaryIndexes"]
        table.update_table(AttributeDefinitions=definition["AttributeDefinitions"],
                           GlobalSecondaryIndexUpdates=[{"Create": wanted}])
        done.append(f"added the index {index}")
    # A store may lack a capability (dynalite has no streams): one line on what will not work,
    # and setup goes on; the API serves without either.
    stream = described.get("StreamSpecification") or {}
    if not stream.get("StreamEnabled"):
        try:
            table.update_table(StreamSpecification=definition["StreamSpecification"])
            done.append("turned the stream on (new images): group rows follow messages again")
        except StoreError as refused:
            done.append(f"no stream ({refused}): conversation rows will not follow new messages, "
                        "and live events will not arrive, on this store")
    elif stream.get("StreamViewType") not in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        done.append(f"left the stream as it is, but its view type {stream.get('StreamViewType')} "
                    f"carries no new images: the stream Lambda needs NEW_IMAGE")
    try:
        if table.ttl()[0] not in ("ENABLED", "ENABLING"):
            status = table.ensure_ttl(layout.TTL_ATTRIBUTE)
            done.append(f"time to live on {layout.TTL_ATTRIBUTE} (idempotency records expire): {status.lower()}")
    except StoreError as refused:
        done.append(f"no time to live ({refused}): idempotency records will not expire on this "
                    "store (each is a few hundred bytes per message sent)")
    return done


def ensure_ttl(table: Ddb) -> str:
    """TTL on the idempotency records' expires_at: the table's TTL status afterwards."""
    return table.ensure_ttl(layout.TTL_ATTRIBUTE)

