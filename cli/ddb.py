"""bin/ddb/*: the messages table: create, drop, list, scan, migrate, seed, and the access patterns."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from lib.conversations import layout, table_setup, week5
from cli import common
from lib.config import Settings
from lib.ddb import Ddb, Page
from devstack import seed as local_seed
from devstack import stream_worker

log = logging.getLogger(__name__)


def print_page(page: Page) -> None:
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
    """Create the table, its GSI and its stream (new images), on-demand unless --provisioned; on a
    table that exists, complete whatever is missing (index, stream, TTL, layout mark)."""
    done = table_setup.set_up_table(Ddb(settings), provisioned, rcu, wcu)
    for step in done:
        click.echo(f"table {settings.ddb_table}: {step}")
    if not done:
        click.echo(f"table {settings.ddb_table}: already complete (index, stream, time to live, layout mark)")


@cli.command()
@common.yes_option
@common.target_option
def drop(settings: Settings, prod: bool, yes: bool) -> None:
    """Delete the table."""
    common.confirm_destructive(prod, f"delete the table {settings.ddb_table}", yes)
    deleted = Ddb(settings).delete_table()
    click.echo(f"table {settings.ddb_table} {'deleted' if deleted else 'does not exist'}")


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
    for item in Ddb(settings).scan_all():
        click.echo(json.dumps(item, default=str))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what would be written, write nothing.")
@common.yes_option
@common.target_option
def migrate(settings: Settings, prod: bool, dry_run: bool, yes: bool) -> None:
    """Bring a table written by the bootcamp's week-5 backend to the current layout.

    Gives each old conversation its header and each pair an alias to it, re-keys rows and
    messages whose times are not UTC with microseconds, then marks the table. Idempotent and
    resumable: run it again after an interruption. Reads the whole table once (a Scan)."""
    ddb = Ddb(settings)
    total = ddb.client.describe_table(TableName=ddb.table)["Table"].get("ItemCount", 0)
    err = click.get_text_stream("stderr")
    with click.progressbar(length=max(total, 1), label="reading the table", file=err) as bar:
        migration = week5.plan(ddb.scan_all(on_page=bar.update))
    click.echo(f"read {migration.scanned} items: {len(migration.headers)} headers, "
               f"{len(migration.aliases)} pair aliases and {len(migration.rekeyed)} re-keyed items "
               f"to write{'' if migration.marked else ', and the layout mark'}")
    for group, why in migration.skipped:
        click.echo(f"skipped group {group}: {why}")
    if dry_run or migration.empty:
        click.echo("nothing written" + (" (--dry-run)" if dry_run else ": the table is current"))
        return
    common.confirm_destructive(prod, f"migrate the table {ddb.table}", yes)
    writes = len(migration.headers) + len(migration.aliases) + len(migration.rekeyed)
    with click.progressbar(length=max(writes, 1), label="writing", file=err) as bar:
        done = week5.apply(ddb, migration, on_progress=bar.update)
    click.echo(f"wrote {done['headers']} headers, {done['aliases']} pair aliases, re-keyed "
               f"{done['rekeyed']} items in {done['calls']} calls; the table is current")


@cli.command("seed")
@click.option("--force", is_flag=True,
              help="Look for missing items even when the conversation's header is there, and "
                   "write them (nothing is written twice).")
@common.target_option
def seed_command(settings: Settings, prod: bool, force: bool) -> None:
    """Write the seeded conversation (db/seed/conversation.txt) with batch writes."""
    # the conversation's messages, its header and its two group rows
    with click.progressbar(length=len(local_seed.read_conversation()) + 3, label="seeding",
                           file=click.get_text_stream("stderr")) as bar:
        items, calls = local_seed.seed(Ddb(settings), common.open_db(settings), force, bar.update)
    if items:
        click.echo(f"seeded {items} items in {calls} batch write calls")
    elif force:
        click.echo("seed conversation complete already: nothing was missing")
    else:
        click.echo("seed conversation already present (--force writes what is missing of it)")


@cli.command("get-conversation")
@click.argument("message_group_uuid", required=False)
@click.option("--limit", default=20, show_default=True)
@common.target_option
def get_conversation(settings: Settings, prod: bool, message_group_uuid: str | None, limit: int) -> None:
    """Pattern A: a group's latest messages (default: the seeded conversation)."""
    if not message_group_uuid:
        message_group_uuid = local_seed.seed_group(common.open_db(settings))
    page = Ddb(settings).query(layout.message_pk(message_group_uuid), limit=limit,
                               newest_first=True, ReturnConsumedCapacity="TOTAL")
    print_page(page)


@cli.command("list-conversations")
@click.argument("handle", default="andrewbrown")
@click.option("--limit", default=20, show_default=True)
@common.target_option
def list_conversations(settings: Settings, prod: bool, handle: str, limit: int) -> None:
    """Pattern B: a user's conversations, most recent first."""
    user = local_seed.user_by_handle(common.open_db(settings), handle)
    page = Ddb(settings).query(layout.group_pk(user["uuid"]), limit=limit, newest_first=True,
                               ReturnConsumedCapacity="TOTAL")
    print_page(page)


@cli.command("stream-worker")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              default=stream_worker.DEFAULT_CHECKPOINT, show_default=".local/stream-worker.json",
              envvar="STREAM_WORKER_CHECKPOINT", show_envvar=True,
              help="Where the row mover's position in the stream is kept (the live events' beside it, "
                   "with -events before the extension).")
@click.option("--interval", type=float, default=0.3, show_default=True,
              help="Seconds between polls when there is nothing new.")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=stream_worker.DEFAULT_BATCH_SIZE,
              show_default=True, help="The row mover's records per GetRecords call (and per handler call); the deployed mapping's BatchSize.")
@common.target_option
def stream_worker_command(settings: Settings, prod: bool, checkpoint: Path, interval: float,
                          batch_size: int) -> None:
    """Feed the local table's stream to both of its Lambdas (the row mover and the live events)
    until SIGTERM or Ctrl-C.

    Local only: in AWS the stream is read by the Lambdas' event source mappings."""
    common.refuse_prod(prod, "the stream worker")
    stream_worker.serve(settings, checkpoint, interval, batch_size)


if __name__ == "__main__":
    common.run(cli)
