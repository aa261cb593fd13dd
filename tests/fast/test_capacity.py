"""bench/capacity.py: DynamoDB's published capacity rules, applied to items in wire format."""
from __future__ import annotations


from bench import capacity
from lib import ddb as dynamo
from lib.conversations import layout


ANA = {"uuid": "0b3c5f52-7d5e-4d43-9d6b-0ab3c4f1a001", "display_name": "Ana", "handle": "ana"}
BO = {"uuid": "0b3c5f52-7d5e-4d43-9d6b-0ab3c4f1a002", "display_name": "Bo", "handle": "bo"}


def test_item_size_counts_names_and_values_as_dynamodb_does():
    assert capacity.item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert capacity.item_size({"n": {"N": "12345"}}) == 1 + (5 + 1) // 2 + 1
    assert capacity.item_size({"b": {"BOOL": True}, "z": {"NULL": True}}) == 2 + 2
    assert capacity.item_size({"é": {"S": "é"}}) == 2 + 2  # UTF-8 bytes
    # a list: 3, plus 1 per element, plus the elements; a map adds its names
    assert capacity.item_size({"l": {"L": [{"S": "ab"}, {"S": "c"}]}}) == 1 + 3 + 2 + 3
    assert capacity.item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + 1 + 1 + 1


def test_units_round_up_per_kilobyte_written_and_four_read():
    assert [capacity.write_units(s) for s in (0, 1, 1024, 1025)] == [1, 1, 1, 2]
    assert capacity.read_units(4096, consistent=True) == 1.0
    assert capacity.read_units(4097, consistent=True) == 2.0
    assert capacity.read_units(100, consistent=False) == 0.5


def test_a_group_row_costs_an_index_write_a_message_does_not():
    row = dynamo.serialize(layout.group_row(ANA["uuid"], BO, "g", "hi", "2030-01-01T00:00:00.000000+00:00"))
    message = dynamo.serialize(layout.message_item("g", ANA, "hi", "2030-01-01T00:00:00.000000+00:00"))
    assert capacity.write_cost(row, None, done=True) == (1, 1)
    assert capacity.write_cost(message, None, done=True) == (1, 0)
    assert capacity.write_cost(None, row, done=True) == (1, 1)        # a delete leaves the index
    assert capacity.write_cost(row, row, done=False) == (1, 0)        # refused: the table's only
    assert capacity.write_cost(row, None, done=True, transactional=True) == (2, 1)
    big = dynamo.serialize(layout.message_item("g", ANA, "x" * 1500, "2030-01-01T00:00:00.000000+00:00"))
    assert capacity.write_cost(big, None, done=True) == (2, 0)


def test_a_move_without_a_transaction_costs_what_the_issue_allows():
    """A message end to end at one message per batch: its put, then per participant a put of
    the new row and the delete of the old one: 9 write units, against 13 in one transaction."""
    message = dynamo.serialize(layout.message_item("g", ANA, "hi", "2030-01-01T00:00:00.000001+00:00"))
    old = [dynamo.serialize(layout.group_row(a["uuid"], b, "g", "hi", "t0")) for a, b in ((ANA, BO), (BO, ANA))]
    new = [dynamo.serialize(layout.group_row(a["uuid"], b, "g", "hi", "t1")) for a, b in ((ANA, BO), (BO, ANA))]
    api = capacity.Usage(*capacity.write_cost(message, None, done=True))
    moves = capacity.Usage()
    for before, after in zip(old, new):
        for table, index in (capacity.write_cost(after, None, done=True), capacity.write_cost(None, before, done=True)):
            moves.wcu += table
            moves.index_wcu += index
    assert api.add(moves).write_total == 9
    assert api.write_total + capacity.transactional(moves) == 13
