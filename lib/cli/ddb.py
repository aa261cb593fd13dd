"""bin/ddb/*: the messages table: create, drop, list, scan, seed, and the access patterns."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from lib import ddb as layout
from lib.cli import common
from lib.config import ROOT, Settings

log = logging.getLogger(__name__)
CONVERSATION_FILE = ROOT / "db" / "seed" / "conversation.txt"
SEED_SPAN_DAYS = 400


def table_exists(client: Any, name: str) -> bool:
    try:
        client.describe_table(TableName=name)
        return True
    except client.exceptions.ResourceNotFoundException:
        return False


def create_table(settings: Settings, provisioned: bool = False, read_capacity: int = 5,
                 write_capacity: int = 5) -> bool:
    """Create the table with its GSI and stream; False when it already exists."""
    client = common.ddb_client(settings)
    if table_exists(client, settings.ddb_table):
        return False
    client.create_table(**layout.table_definition(settings.ddb_table, provisioned,
                                                  read_capacity, write_capacity))
    client.get_waiter("table_exists").wait(TableName=settings.ddb_table,
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True


def read_conversation(path: Path = CONVERSATION_FILE) -> list[tuple[str, str]]:
    lines = []
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        handle, _, text = raw.partition(":")
        lines.append((handle.strip(), text.strip()))
    return lines


def seed_items(users: dict[str, dict[str, Any]], conversation: list[tuple[str, str]],
               end: datetime, span_days: int = SEED_SPAN_DAYS) -> list[dict[str, Any]]:
    """The header, both group rows and every message of a two-person conversation, the messages
    spread evenly over `span_days` up to `end`."""
    handles = sorted({h for h, _ in conversation})
    if len(handles) != 2:
        raise click.ClickException(f"the seed conversation must have two participants, not {handles}")
    a, b = (users[h] for h in handles)
    group = layout.group_uuid_for(a["uuid"], b["uuid"])
    step = timedelta(days=span_days) / max(1, len(conversation) - 1)
    start = end - timedelta(days=span_days)
    messages = [layout.message_item(group, users[h], text, layout.iso(start + i * step))
                for i, (h, text) in enumerate(conversation)]
    last = messages[-1]
    return [
        layout.header_item(group, [a["uuid"], b["uuid"]], messages[0]["sk"]),
        layout.group_row(a["uuid"], b, group, last["message"], last["sk"]),
        layout.group_row(b["uuid"], a, group, last["message"], last["sk"]),
        *messages,
    ]


def seed(settings: Settings, db: Any, force: bool = False, progress: bool = True,
         path: Path = CONVERSATION_FILE) -> tuple[int, int]:
    """Write the seed conversation unless it is there already. Returns (items, calls)."""
    conversation = read_conversation(path)
    users = {h: common.user_by_handle(db, h) for h in {h for h, _ in conversation}}
    items = seed_items(users, conversation, datetime.now(timezone.utc) - timedelta(hours=1))
    table = layout.Ddb(settings)
    if not force and table.get(layout.header_key(items[1]["message_group_uuid"])):
        return 0, 0
    if progress:
        with click.progressbar(length=len(items), label="seeding", file=click.get_text_stream("stderr")) as bar:
            calls = table.batch_write(items, on_progress=bar.update)
    else:
        calls = table.batch_write(items)
    return len(items), calls


def print_page(page: layout.Page) -> None:
    for item in page.items:
        click.echo(json.dumps(item, default=str))
    click.echo(f"consumed capacity: {json.dumps(page.consumed)}")


@click.group()
def cli() -> None:
    """The DynamoDB messages table."""


@cli.command("schema-load")
@click.option("--provisioned", is_flag=True, help="Provisioned capacity instead of on-demand.")
@click.option("--rcu", default=5, show_default=True, help="Read capacity with --provisioned.")
@click.option("--wcu", default=5, show_default=True, help="Write capacity with --provisioned.")
@common.target_option
def schema_load(settings: Settings, prod: bool, provisioned: bool, rcu: int, wcu: int) -> None:
    """Create the table, its GSI and its stream (new images). On-demand unless --provisioned."""
    created = create_table(settings, provisioned, rcu, wcu)
    click.echo(f"table {settings.ddb_table} {'created' if created else 'already exists'}")


@cli.command()
@common.yes_option
@common.target_option
def drop(settings: Settings, prod: bool, yes: bool) -> None:
    """Delete the table."""
    common.confirm_destructive(prod, f"delete the table {settings.ddb_table}", yes)
    client = common.ddb_client(settings)
    if not table_exists(client, settings.ddb_table):
        click.echo(f"table {settings.ddb_table} does not exist")
        return
    client.delete_table(TableName=settings.ddb_table)
    click.echo(f"table {settings.ddb_table} deleted")


@cli.command("list-tables")
@common.target_option
def list_tables(settings: Settings, prod: bool) -> None:
    """List the tables."""
    for name in common.ddb_client(settings).list_tables()["TableNames"]:
        click.echo(name)


@cli.command()
@common.target_option
def scan(settings: Settings, prod: bool) -> None:
    """Print every item of the local table (refuses against AWS)."""
    common.refuse_prod(prod, "scan")
    paginator = common.ddb_client(settings).get_paginator("scan")
    for page in paginator.paginate(TableName=settings.ddb_table):
        for item in page["Items"]:
            click.echo(json.dumps(layout.deserialize(item), default=str))


@cli.command("seed")
@click.option("--force", is_flag=True, help="Write the conversation even if it is there already.")
@common.target_option
def seed_command(settings: Settings, prod: bool, force: bool) -> None:
    """Write the seeded conversation (db/seed/conversation.txt) with batch writes."""
    items, calls = seed(settings, common.open_db(settings), force)
    if items:
        click.echo(f"seeded {items} items in {calls} batch write calls")
    else:
        click.echo("seed conversation already present (use --force to write it again)")


@cli.command("get-conversation")
@click.argument("message_group_uuid", required=False)
@click.option("--limit", default=20, show_default=True)
@common.target_option
def get_conversation(settings: Settings, prod: bool, message_group_uuid: str | None, limit: int) -> None:
    """Pattern A: a group's latest messages (default: the seeded conversation)."""
    if not message_group_uuid:
        db = common.open_db(settings)
        handles = sorted({h for h, _ in read_conversation()})
        a, b = (common.user_by_handle(db, h) for h in handles)
        message_group_uuid = layout.group_uuid_for(a["uuid"], b["uuid"])
    page = layout.Ddb(settings).messages_page(message_group_uuid, limit,
                                             ReturnConsumedCapacity="TOTAL")
    print_page(page)


@cli.command("list-conversations")
@click.argument("handle", default="andrewbrown")
@click.option("--limit", default=20, show_default=True)
@common.target_option
def list_conversations(settings: Settings, prod: bool, handle: str, limit: int) -> None:
    """Pattern B: a user's conversations, most recent first."""
    user = common.user_by_handle(common.open_db(settings), handle)
    page = layout.Ddb(settings).groups_page(user["uuid"], limit, ReturnConsumedCapacity="TOTAL")
    print_page(page)


if __name__ == "__main__":
    common.run(cli)
