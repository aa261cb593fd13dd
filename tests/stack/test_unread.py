"""Unread counts and read markers through HTTP (issue 15), with the stream Lambda applying the
messages' records as DynamoDB Streams would deliver them: in order, replayed, late and reordered.
Every count and marker is checked against a simple model of the conversation."""
from __future__ import annotations

import itertools
from typing import Any

import pytest

from bench.stream import stream_record
from lib import ddb as dynamo
from lib.conversations import layout
from lib.conversations.rows import rows_of
from devstack.stream_worker import lambda_event, load_lambda
from tests.http_api import Users, conforms, error, get, groups, post, send
from tests import tables

CAP = 99


class Model:
    """What the counts must be: the messages the stream has applied, and each user's marker."""

    def __init__(self, users: list[Any]):
        self.applied: dict[str, str] = {}            # sk -> sender uuid
        self.marker = {u.uuid: "" for u in users}

    def apply(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.applied[item["sk"]] = item["user_uuid"]
        newest_own: dict[str, str] = {}
        for sk, sender in self.applied.items():
            newest_own[sender] = max(newest_own.get(sender, ""), sk)
        for user, sk in newest_own.items():  # sending marks read
            self.marker[user] = max(self.marker[user], sk)

    def read(self, user: str, up_to: str) -> None:
        self.marker[user] = max(self.marker[user], up_to)

    def unread(self, user: str) -> int:
        last = max(self.applied) if self.applied else ""
        return min(CAP, sum(1 for sk, sender in self.applied.items()
                            if sender != user and self.marker[user] < sk <= last))


@pytest.fixture(scope="module")
def users(settings):
    made = Users(settings)
    yield made
    made.pg.close()


class Stream:
    """The stream Lambda, handed records of the given message items."""

    def __init__(self, settings):
        self.table = dynamo.Ddb(settings)
        self.mod = load_lambda()
        self.config = self.mod.Config(table=settings.ddb_table)
        self.region = settings.aws_region
        self.arn = f"arn:aws:dynamodb:{self.region}:123456789012:table/{settings.ddb_table}/stream/t"
        self.sequence = itertools.count(1)

    def item(self, group: str, reply: dict[str, Any]) -> dict[str, Any]:
        return self.table.get({"pk": layout.message_pk(group), "sk": reply["created_at"]})

    def deliver(self, items: list[dict[str, Any]]) -> None:
        """As Lambda does: the batch, then, while a record is reported failed, the batch again
        from that record (the harsh store throttles and loses responses)."""
        records = lambda_event([stream_record(i, next(self.sequence)) for i in items], self.arn,
                               self.region)["Records"]
        for _ in range(10):
            failures = self.mod.handle_event({"Records": records}, self.table.client, self.config)
            if not failures["batchItemFailures"]:
                return
            failed = failures["batchItemFailures"][0]["itemIdentifier"]
            records = records[[r["dynamodb"]["SequenceNumber"] for r in records].index(failed):]
        raise AssertionError("the batch kept failing")


def unread_of(api, user, group: str) -> int:
    [row] = [g for g in groups(api, user) if g["uuid"] == group]
    return row["unread_count"]


def summary(api, user) -> dict[str, int]:
    response = get(api, "/api/message_groups/unread", user)
    assert response.status_code == 200, response.text
    conforms(response.json(), "UnreadSummary")
    return response.json()


def mark(api, user, group: str, up_to: str | None = None) -> int:
    response = post(api, f"/api/messages/{group}/read", user,
                    **({"json": {"up_to": up_to}} if up_to else {}))
    assert response.status_code == 200, response.text
    conforms(response.json(), "UnreadCount")
    return response.json()["unread_count"]


@pytest.mark.parametrize("harshly", [False, True], ids=["kind", "harsh"])
def test_two_users_counts_and_markers_follow_the_model(api, users, settings, harsh, harshly):
    if harshly:
        harsh()  # a lagging index, lost responses, throttling (records are handed over here)
    a, b = users.make("ua"), users.make("ub")
    stream = Stream(settings)
    model = Model([a, b])

    def check() -> None:
        for user in (a, b):
            assert unread_of(api, user, group) == model.unread(user.uuid), user.handle
            counted = model.unread(user.uuid)
            assert summary(api, user) == {"conversations": int(counted > 0), "messages": counted}
            # and the marker the row keeps (one row per participant)
            [row] = [r for r in tables.groups_page(stream.table, user.uuid, 10).items if r["message_group_uuid"] == group]
            assert row.get("read_up_to", "") == model.marker[user.uuid], user.handle

    # the first message: the API writes both rows, read for its sender, one unread for the other
    first = send(api, a, "hello", to=b)
    group = first["message_group_uuid"]
    first_item = stream.item(group, first)
    model.apply([first_item])
    check()
    stream.deliver([first_item])  # its record changes nothing
    check()

    # messages both ways, one batch
    sent = [send(api, sender, f"m{i}", group=group) for i, sender in enumerate((b, a, a, b, b))]
    items = [stream.item(group, s) for s in sent]
    stream.deliver(items)
    model.apply(items)
    check()
    # b sent the newest (read up to it); a has not read b's two after her own last
    assert model.unread(a.uuid) == 2 and model.unread(b.uuid) == 0

    # a replayed batch counts nothing twice
    stream.deliver(items)
    stream.deliver(items[2:])
    check()

    # a reordered batch: the newest first, an older one late, in a batch of its own
    more = [send(api, b, f"late {i}", group=group) for i in range(3)]
    more_items = [stream.item(group, s) for s in more]
    stream.deliver([more_items[2]])
    model.apply([more_items[2]])
    stream.deliver([more_items[0], more_items[1]])
    model.apply(more_items[:2])
    check()
    assert model.unread(a.uuid) == 5

    # reading: up to a given message, then never back, then everything
    assert mark(api, a, group, more[0]["created_at"]) == 2
    model.read(a.uuid, more[0]["created_at"])
    check()
    assert mark(api, a, group, sent[0]["created_at"]) == 2  # an older marker changes nothing
    check()
    assert mark(api, a, group) == 0
    model.read(a.uuid, more[-1]["created_at"])
    check()
    assert summary(api, a) == {"conversations": 0, "messages": 0}

    # sending marks read for the sender: b has a's "ping" unread, then answers
    ping = stream.item(group, send(api, a, "ping", group=group))
    stream.deliver([ping])
    model.apply([ping])
    check()
    assert model.unread(b.uuid) == 1
    reply = stream.item(group, send(api, b, "answer", group=group))
    stream.deliver([reply])
    model.apply([reply])
    check()
    assert model.unread(b.uuid) == 0 and model.unread(a.uuid) == 1


def test_a_read_marked_while_a_move_is_in_flight_is_kept(api, users, settings):
    """The Lambda has read b's row and put the new one; b marks read on the old row before the
    Lambda deletes it: the delete finds the marker changed, and the new row takes it."""
    a, b = users.make("ra"), users.make("rb")
    stream = Stream(settings)
    first = send(api, a, "one", to=b)
    group = first["message_group_uuid"]
    second = send(api, a, "two", group=group)
    item = stream.item(group, second)

    real_put = stream.table.client.put_item

    class MarkDuringMove:
        def __getattr__(self, name):
            return getattr(stream.table.client, name)

        def put_item(self, **params):
            answer = real_put(**params)
            if params["Item"]["pk"]["S"] == layout.group_pk(b.uuid) and not getattr(self, "done", False):
                self.done = True
                assert mark(api, b, group, second["created_at"]) == 0  # on the old row, still there
            return answer

    event = lambda_event([stream_record(item, 1)], stream.arn, stream.region)
    assert stream.mod.handle_event(event, MarkDuringMove(), stream.config) == {"batchItemFailures": []}
    rows = [r for r in tables.groups_page(stream.table, b.uuid, 10).items if r["message_group_uuid"] == group]
    assert [(r["sk"], r.get("read_up_to"), int(r.get("unread_count", 0))) for r in rows] == [
        (second["created_at"], second["created_at"], 0)]
    assert unread_of(api, b, group) == 0


def test_rows_written_before_counts_read_as_zero(api, users, settings):
    """A row without unread_count (the week-5 backend's, or this code's before issue 15) reads as
    0 unread, needs no migration, and counts from its next message on."""
    a, b = users.make("za"), users.make("zb")
    first = send(api, a, "one", to=b)
    group = first["message_group_uuid"]
    table = dynamo.Ddb(settings)
    for row in tables.group_rows(table, group):
        table.put({k: v for k, v in row.items() if k not in ("unread_count", "read_up_to")})
    assert unread_of(api, b, group) == 0
    assert summary(api, b) == {"conversations": 0, "messages": 0}
    stream = Stream(settings)
    second = send(api, a, "two", group=group)
    stream.deliver([stream.item(group, second)])
    assert unread_of(api, b, group) == 1


def test_marking_read_is_for_participants_and_takes_a_message_time(api, users):
    a, b, c = users.make("pa"), users.make("pb"), users.make("pc")
    group = send(api, a, "hi", to=b)["message_group_uuid"]
    error(post(api, f"/api/messages/{group}/read", c), 404, "message_group_not_found")
    error(post(api, f"/api/messages/{layout.group_uuid_for(a.uuid, c.uuid)}/read", a), 404,
          "message_group_not_found")
    error(post(api, "/api/messages/not-a-uuid/read", a), 404, "message_group_not_found")
    for bad in ("yesterday", "2026-01-01T00:00:00", 5, "2026-13-01T00:00:00+00:00"):
        error(post(api, f"/api/messages/{group}/read", b, json={"up_to": bad}), 422, "up_to_invalid")
    error(post(api, f"/api/messages/{group}/read", b, json=[1]), 400, "body_invalid")
    error(post(api, f"/api/messages/{group}/read"), 401, "token_missing")
    error(get(api, "/api/message_groups/unread"), 401, "token_missing")
    assert mark(api, b, group, "2026-01-01T01:00:00+01:00") == 1  # any time zone, before "hi"
    assert mark(api, b, group) == 0


def test_a_marker_out_of_range_is_422_and_one_past_the_newest_message_is_clamped(api, users, settings):
    """Issue 24, item 6: a time whose UTC form is before year 1 or after 9999 is refused (it was a
    500), and a far-future marker is clamped to the newest message (markers never move back: it
    would have muted the conversation for good)."""
    a, b = users.make("ra"), users.make("rb")
    hi = send(api, a, "hi", to=b)
    group = hi["message_group_uuid"]
    for out_of_range in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        error(post(api, f"/api/messages/{group}/read", b, json={"up_to": out_of_range}), 422,
              "up_to_invalid")
    assert mark(api, b, group, "9000-01-01T00:00:00+00:00") == 0
    [row] = rows_of(dynamo.Ddb(settings), b.uuid, group)
    assert row["read_up_to"] == hi["created_at"], "clamped to the newest message"
