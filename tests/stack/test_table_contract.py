"""The contract of the table helper: the same tests against lib.ddb.Ddb over moto and against the
in-memory twin the fast tests use (tests/memory_table.py), so that the twin cannot drift. The
memory half is part of the fast tier (`./bin/test -m fast`)."""
from __future__ import annotations

import time

import pytest

from lib.ddb import Ddb, KeyTaken
from lib.conversations import layout
from tests.memory_table import MemoryTable


@pytest.fixture(params=[pytest.param("memory", marks=pytest.mark.fast), "moto"])
def table(request):
    if request.param == "memory":
        return MemoryTable()
    return Ddb(request.getfixturevalue("fresh_table"))


def key(pk: str, sk: str) -> dict[str, str]:
    return {"pk": pk, "sk": sk}


def test_an_item_reads_back_as_it_was_put(table):
    item = {**key("A#1", "s"), "text": "hi", "count": 3, "flag": True, "names": ["a", "b"],
            "profile": {"u": {"handle": "h"}}}
    table.put(item)
    assert table.get(key("A#1", "s")) == item
    assert table.get(key("A#1", "s"), consistent=False, attributes=("text", "count")) == {"text": "hi", "count": 3}
    assert table.get(key("A#1", "nothing")) is None


def test_put_new_refuses_a_taken_key_and_says_what_holds_it(table):
    table.put_new({**key("A#2", "s"), "v": "first"})
    with pytest.raises(KeyTaken) as taken:
        table.put_new({**key("A#2", "s"), "v": "second"})
    assert taken.value.held[0]["v"] == "first"
    assert table.get(key("A#2", "s"))["v"] == "first"


def test_put_new_with_expiry_replaces_only_an_expired_item(table):
    table.put({**key("A#3", "old"), "v": 1, "expires_at": int(time.time()) - 60})
    table.put({**key("A#3", "live"), "v": 1, "expires_at": int(time.time()) + 60})
    table.put_new({**key("A#3", "old"), "v": 2}, expires="expires_at")
    with pytest.raises(KeyTaken):
        table.put_new({**key("A#3", "live"), "v": 2}, expires="expires_at")
    assert table.get(key("A#3", "old"))["v"] == 2 and table.get(key("A#3", "live"))["v"] == 1


def test_update_if_sets_only_while_the_expectation_holds(table):
    table.put({**key("A#4", "s"), "group": "g"})
    table.update_if(key("A#4", "s"), {"marker": "m1", "n": 1}, {"group": "g", "marker": None})
    assert table.get(key("A#4", "s")) == {**key("A#4", "s"), "group": "g", "marker": "m1", "n": 1}
    with pytest.raises(KeyTaken) as changed:
        table.update_if(key("A#4", "s"), {"marker": "m2"}, {"group": "g", "marker": None})
    assert changed.value.held[0]["marker"] == "m1"
    table.update_if(key("A#4", "s"), {"marker": "m2"}, {"marker": "m1"})
    with pytest.raises(KeyTaken) as absent:
        table.update_if(key("A#4", "gone"), {"marker": "m"}, {})
    assert absent.value.held == {}
    assert table.get(key("A#4", "gone")) is None, "an update never creates an item"


def test_update_if_removes_the_attributes_given_none(table):
    table.put({**key("A#7", "s"), "group": "g", "stamp": "1", "text": "t"})
    table.update_if(key("A#7", "s"), {"text": "", "stamp": None}, {"group": "g"})
    assert table.get(key("A#7", "s")) == {**key("A#7", "s"), "group": "g", "text": ""}
    table.update_if(key("A#7", "s"), {"stamp": None}, {"group": "g"})  # removing what is absent is fine
    assert table.get(key("A#7", "s")) == {**key("A#7", "s"), "group": "g", "text": ""}


def test_update_if_newer_never_goes_back_to_an_older_version(table):
    table.put({**key("A#6", "s"), "group": "g", "text": "sent"})
    assert table.update_if_newer(key("A#6", "s"), {"text": "t2", "v": "2"}, {"group": "g"}, "v") is True
    assert table.update_if_newer(key("A#6", "s"), {"text": "t1", "v": "1"}, {"group": "g"}, "v") is False
    assert table.update_if_newer(key("A#6", "s"), {"text": "t2", "v": "2"}, {"group": "g"}, "v") is False
    assert table.update_if_newer(key("A#6", "s"), {"text": "t3", "v": "3"}, {"group": "other"}, "v") is False
    assert table.get(key("A#6", "s"))["text"] == "t2"
    assert table.update_if_newer(key("A#6", "s"), {"text": "t3", "v": "3"}, {"group": "g"}, "v") is True
    assert table.update_if_newer(key("A#6", "gone"), {"text": "t", "v": "9"}, {}, "v") is False
    assert table.get(key("A#6", "gone")) is None, "an update never creates an item"


def test_delete_if_deletes_only_while_the_expectation_holds(table):
    table.put({**key("A#5", "s"), "group": "g"})
    assert table.delete_if(key("A#5", "s"), {"group": "other"}) is False
    assert table.delete_if(key("A#5", "s"), {"group": "g", "marker": None}) is True
    assert table.get(key("A#5", "s")) is None
    assert table.delete_if(key("A#5", "s"), {}) is False


def test_query_orders_pages_ranges_filters_and_projects(table):
    sks = [f"2030-01-01T00:00:0{i}.000000+00:00" for i in range(8)]
    table.batch_write([{**key("Q#1", sk), "who": "a" if i % 2 else "b", "n": i} for i, sk in enumerate(sks)])
    table.put({**key("Q#2", sks[0]), "who": "a"})
    assert [i["sk"] for i in table.query("Q#1").items] == sks
    assert [i["sk"] for i in table.query("Q#1", newest_first=True, limit=3).items] == sks[::-1][:3]
    seen, after = [], None
    while True:  # pages chained by next_sk give every item once, newest first
        page = table.query("Q#1", newest_first=True, limit=3, after_sk=after)
        seen += [i["sk"] for i in page.items]
        if page.next_sk is None:
            break
        after = page.next_sk
    assert seen == sks[::-1]
    assert [i["sk"] for i in table.query("Q#1", sk_from=sks[2], sk_to=sks[4]).items] == sks[2:5]
    assert [i["sk"] for i in table.query("Q#1", sk_from=sks[6]).items] == sks[6:]
    assert [i["n"] for i in table.query("Q#1", where={"who": "a"}).items] == [1, 3, 5, 7]
    assert table.query("Q#1", limit=2, attributes=("sk",), consistent=True).items == [{"sk": sks[0]}, {"sk": sks[1]}]
    assert [i["sk"] for i in table.query_items("Q#1", newest_first=True, where={"who": "b"},
                                               attributes=("sk",))] == sks[-2::-2]


def test_a_filter_is_applied_after_the_limit_counts(table):
    """DynamoDB's Limit counts the items read, before the filter: a page may hold fewer items than
    asked for, even none, and still be followed by more."""
    sks = [f"2030-01-01T00:00:0{i}.000000+00:00" for i in range(4)]
    table.batch_write([{**key("Q#3", sk), "who": "a" if i == 3 else "b"} for i, sk in enumerate(sks)])
    page = table.query("Q#3", limit=2, where={"who": "a"})
    assert page.items == [] and page.next_sk is not None


def test_a_filter_on_none_keeps_the_items_without_that_attribute(table):
    sks = [f"2030-01-01T00:00:0{i}.000000+00:00" for i in range(4)]
    table.batch_write([{**key("Q#4", sk), **({"gone": "yes"} if i in (1, 2) else {})} for i, sk in enumerate(sks)])
    assert [i["sk"] for i in table.query("Q#4", where={"gone": None}).items] == [sks[0], sks[3]]
    assert [i["sk"] for i in table.query_items("Q#4", newest_first=True, where={"gone": None})] == [sks[3], sks[0]]


def test_the_index_finds_items_by_their_attribute(table):
    table.put({**key("GRP#u1", "2030-01-01T00:00:01.000000+00:00"), "message_group_uuid": "g"})
    table.put({**key("GRP#u2", "2030-01-01T00:00:00.000000+00:00"), "message_group_uuid": "g"})
    table.put({**key("GRP#u3", "2030-01-01T00:00:00.000000+00:00"), "message_group_uuid": "h"})
    table.put({**key("MSG#g", "2030-01-01T00:00:00.000000+00:00"), "text": "not in the index"})
    found = table.query_index(layout.GSI_NAME, "message_group_uuid", "g")
    assert [i["pk"] for i in found] == ["GRP#u2", "GRP#u1"]


def test_batches_write_and_delete_many_items(table):
    items = [{**key("B#1", f"{i:03}"), "n": i} for i in range(60)]
    assert table.batch_write(items) >= 3
    assert len(list(table.query_items("B#1"))) == 60
    table.batch_delete([key("B#1", f"{i:03}") for i in range(50)])
    assert [i["n"] for i in table.query_items("B#1")] == list(range(50, 60))
    assert {i["n"] for i in table.scan_all() if i["pk"] == "B#1"} == set(range(50, 60))


def test_the_table_reports_itself(table):
    assert table.table_exists() and table.table_active()
    assert table.ensure_ttl(layout.TTL_ATTRIBUTE) in ("ENABLED", "ENABLING")
    assert table.ttl() in (("ENABLED", "expires_at"), ("ENABLING", "expires_at"))
    table.delete_if(layout.LAYOUT_KEY, {})  # the mark a new messages table is made with
    assert table.is_empty()
    table.put(key("E#1", "s"))
    assert not table.is_empty()


@pytest.fixture(params=[pytest.param("memory", marks=pytest.mark.fast), "moto"])
def bare(request):
    """A table with neither its index nor its stream, not yet made."""
    if request.param == "memory":
        yield MemoryTable(exists=False)
        return
    from lib.ddb import Ddb as Real
    real = Real(request.getfixturevalue("settings").with_(ddb_table=f"test-bare-{time.time_ns()}"))
    yield real
    real.delete_table()


def test_a_table_is_described_and_completed_by_updates(bare):
    full = layout.table_definition(bare.table)
    definition = {**full, "AttributeDefinitions": full["AttributeDefinitions"][:2]}
    index = definition.pop("GlobalSecondaryIndexes")[0]
    stream = definition.pop("StreamSpecification")
    assert bare.describe() is None
    assert bare.create_table(definition) is True and bare.create_table(definition) is False
    described = bare.describe()
    assert not described.get("GlobalSecondaryIndexes") and not (described.get("StreamSpecification") or {}).get("StreamEnabled")
    assert bare.ttl() == ("DISABLED", None)
    bare.update_table(AttributeDefinitions=full["AttributeDefinitions"],
                      GlobalSecondaryIndexUpdates=[{"Create": index}])
    bare.update_table(StreamSpecification=stream)
    described = bare.describe()
    assert [i["IndexName"] for i in described["GlobalSecondaryIndexes"]] == [layout.GSI_NAME]
    assert described["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    bare.put({**key("GRP#u", "s"), "message_group_uuid": "g"})
    assert [i["pk"] for i in bare.query_index(layout.GSI_NAME, "message_group_uuid", "g")] == ["GRP#u"]
