"""What bin/ddb/migrate plans for a table the bootcamp's week-5 backend wrote, and what it writes
(lib/conversations/week5.py), over the in-memory table: headers from rows, an alias for each pair,
times made canonical, the mark last, and a second run that finds nothing to do. Against moto and
the API: tests/stack/test_week5_tables.py."""
from __future__ import annotations

import pytest

from lib.conversations import layout, week5
from lib.conversations.store import ConversationStore
from tests.memory_table import MemoryTable

ANA = {"uuid": "11111111-1111-4111-8111-111111111111", "display_name": "Ana A", "handle": "ana"}
BO = {"uuid": "22222222-2222-4222-8222-222222222222", "display_name": "Bo B", "handle": "bo"}
CY = {"uuid": "33333333-3333-4333-8333-333333333333", "display_name": "Cy C", "handle": "cy"}
OLD = "6f1c3c55-0000-4000-8000-0000000000a1"
OLDER = "6f1c3c55-0000-4000-8000-0000000000a0"


def week5_group(group: str, a: dict, b: dict, last: str, text: str = "hi") -> list[dict]:
    """A group as the week-5 backend wrote it: two rows (its own time format) and a message."""
    return [*layout.message_rows(a, b, group, text, last), layout.message_item(group, a, text, last)]


@pytest.mark.parametrize("sk, canonical", [
    ("2023-03-30T18:42:44.541209+00:00", "2023-03-30T18:42:44.541209+00:00"),
    ("2023-03-30T18:42:44+00:00", "2023-03-30T18:42:44.000000+00:00"),
    ("2023-03-30T20:42:44.5+02:00", "2023-03-30T18:42:44.500000+00:00"),
    ("2023-03-30T18:42:44", "2023-03-30T18:42:44.000000+00:00"),
    ("GROUP", None), ("", None),
])
def test_a_time_is_made_canonical_utc_with_microseconds(sk, canonical):
    assert week5.canonical(sk) == canonical


def test_a_groups_header_names_its_rows_owners_and_their_names():
    rows = layout.message_rows(ANA, BO, OLD, "hi", "2023-03-30T18:42:44+00:00")
    header = week5.header_from_rows(OLD, rows)
    assert header["participants"] == sorted([ANA["uuid"], BO["uuid"]])
    assert header["profiles"][BO["uuid"]] == {"display_name": "Bo B", "handle": "bo"}
    assert header["created_at"] == "2023-03-30T18:42:44.000000+00:00"


def test_the_plan_gives_each_group_a_header_each_pair_its_latest_group_and_fixes_times():
    items = (week5_group(OLDER, ANA, BO, "2023-03-01T10:00:00+00:00")
             + week5_group(OLD, ANA, BO, "2023-03-30T18:42:44.541209+00:00")
             + [layout.group_row(CY["uuid"], ANA, "6f1c3c55-0000-4000-8000-0000000000c0", "alone", "2023-03-02T00:00:00+00:00")])
    plan = week5.plan(items)
    assert sorted(h["pk"] for h in plan.headers) == sorted(f"GROUP#{g}" for g in (OLD, OLDER))
    [alias] = plan.aliases
    assert alias["pk"] == f"GROUP#{layout.group_uuid_for(ANA['uuid'], BO['uuid'])}"
    assert alias["message_group_uuid"] == OLD, "the pair's most recent group"
    assert {old["sk"] for old, _ in plan.rekeyed} == {"2023-03-01T10:00:00+00:00", "2023-03-02T00:00:00+00:00"}
    assert plan.skipped == [("6f1c3c55-0000-4000-8000-0000000000c0", "1 participant(s) among its rows, not 2")]
    assert not plan.marked and not plan.empty and plan.scanned == len(items)


def test_applying_the_plan_serves_the_old_groups_and_a_second_run_finds_nothing():
    table = MemoryTable()
    table.batch_write(week5_group(OLD, ANA, BO, "2023-03-30T18:42:44+00:00"))
    done = week5.apply(table, week5.plan(table.scan_all()))
    assert (done["headers"], done["aliases"], done["rekeyed"]) == (1, 1, 3)
    assert week5.layout_version(table) == layout.LAYOUT_VERSION
    assert week5.plan(table.scan_all()).empty
    store = ConversationStore(table)
    assert store.is_participant(OLD, BO["uuid"]) and store.layout_current()
    sent = store.send_to_user(BO, ANA, "after the migration")
    assert sent.message.message_group_uuid == OLD, "never a second conversation beside the old one"


def test_an_alias_never_replaces_a_real_header_of_the_pair():
    table = MemoryTable()
    store = ConversationStore(table)
    table.put(layout.layout_item())
    real = store.send_to_user(ANA, BO, "new style").message.message_group_uuid
    table.batch_write(week5_group(OLD, ANA, BO, "2023-03-30T18:42:44+00:00"))
    week5.apply(table, week5.plan(table.scan_all()))
    derived = table.get(layout.header_key(layout.group_uuid_for(ANA["uuid"], BO["uuid"])))
    assert derived.get("message_group_uuid", real) == real
