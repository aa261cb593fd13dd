"""Tables written by the bootcamp's week-5 backend keep working, before and after bin/ddb/migrate.

The items are written exactly as that backend wrote them (its lib/ddb.py: create_message_group
with BatchWriteItem, create_message with PutItem, times from
`datetime.now(timezone.utc).astimezone().isoformat()`), into a table without a layout mark."""
from __future__ import annotations

import os
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from app import create_app
from domain import times
from lib import aws, cognito
from lib import ddb as dynamo
from lib.conversations import layout
from lib.conversations import week5 as week5_module
from lib.config import ROOT, Settings
from lib.db import Db
from lib.ddb import Ddb
from devstack import LocalSettings, access_token, add_user
from lib.users import UserStore
from services.link_cognito_users import LinkCognitoUsers
from tests import tables


def week5_time(offset_hours: int = 0, at: datetime | None = None) -> str:
    """As the week-5 backend wrote times: now, in the server's own time zone."""
    moment = at or datetime.now(timezone.utc)
    return moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


def week5_group(client: Any, table: str, me: dict, other: dict, text: str, when: str) -> str:
    """Its create_message_group: a random group uuid, both rows and the first message."""
    group = str(uuid.uuid4())

    def row(owner: dict, named: dict) -> dict:
        return {"pk": {"S": f"GRP#{owner['uuid']}"}, "sk": {"S": when},
                "message_group_uuid": {"S": group}, "message": {"S": text},
                "user_uuid": {"S": named["uuid"]}, "user_display_name": {"S": named["display_name"]},
                "user_handle": {"S": named["handle"]}}

    client.batch_write_item(RequestItems={table: [
        {"PutRequest": {"Item": row(me, other)}}, {"PutRequest": {"Item": row(other, me)}},
        {"PutRequest": {"Item": week5_message(group, me, text, when)}}]})
    return group


def week5_message(group: str, me: dict, text: str, when: str) -> dict:
    return {"pk": {"S": f"MSG#{group}"}, "sk": {"S": when}, "message": {"S": text},
            "message_uuid": {"S": str(uuid.uuid4())}, "user_uuid": {"S": me["uuid"]},
            "user_display_name": {"S": me["display_name"]}, "user_handle": {"S": me["handle"]}}


@pytest.fixture
def week5(fresh_table: Settings):
    """A table as the week-5 backend left it: no layout mark (a fresh table has one)."""
    Ddb(fresh_table).client.delete_item(TableName=fresh_table.ddb_table,
                                        Key=dynamo.serialize(layout.LAYOUT_KEY))
    return fresh_table


@pytest.fixture(scope="module")
def people(settings: Settings) -> dict[str, dict[str, str]]:
    """Three users in PostgreSQL and the local pool, with access tokens."""
    tag = uuid.uuid4().hex[:8]
    client = aws.client(settings, "cognito-idp")
    db = Db(settings)
    made = {}
    try:
        for name in ("ann", "ben", "cat"):
            handle = f"{name}{tag}"
            uuid_ = db.query_commit(
                "INSERT INTO public.users (display_name, handle, email) VALUES (%(d)s, %(h)s, %(e)s) "
                "RETURNING uuid::text", {"d": name.title(), "h": handle, "e": f"{handle}@example.test"})
            row = {"uuid": uuid_, "display_name": name.title(), "handle": handle,
                   "email": f"{handle}@example.test"}
            add_user(client, settings.cognito_user_pool_id, row, LocalSettings().seed_password)
            made[name] = row
        LinkCognitoUsers.run(UserStore(db), cognito.pool_users(client, settings.cognito_user_pool_id))
    finally:
        db.close()
    for person in made.values():
        person["auth"] = f"Bearer {access_token(settings, person['handle'])}"
    return made


class Client:
    """The API over one table, in process."""

    def __init__(self, settings: Settings):
        self.app = create_app(settings.with_(cursor_secret="week5"))
        self.http = self.app.test_client()
        self.backend = self.app.extensions["parts"]

    def get(self, path: str, who: dict):
        return self.http.get(path, headers={"Authorization": who["auth"]})

    def post(self, who: dict, **body: str):
        return self.http.post("/api/messages", headers={"Authorization": who["auth"]}, json=body)

    def close(self) -> None:
        self.backend.db.close()


@pytest.fixture
def api_over(request):
    made: list[Client] = []

    def make(settings: Settings) -> Client:
        made.append(Client(settings))
        return made[-1]

    yield make
    for client in made:
        client.close()


def test_an_unmigrated_week5_table_works_and_never_gets_a_second_conversation(week5, people, api_over):
    ann, ben, cat = people["ann"], people["ben"], people["cat"]
    client = Ddb(week5).client
    earlier = week5_time(at=datetime.now(timezone.utc) - timedelta(days=30))
    old = week5_group(client, week5.ddb_table, ben, ann, "an older conversation", earlier)
    group = week5_group(client, week5.ddb_table, ann, ben, "hi ben", week5_time())
    client.put_item(TableName=week5.ddb_table, Item=week5_message(group, ben, "hi ann", week5_time()))
    api = api_over(week5)

    # B and A for both participants
    for me, other in ((ann, ben), (ben, ann)):
        listed = api.get("/api/message_groups", me).json
        assert {g["uuid"] for g in listed} == {group, old}
        assert {g["handle"] for g in listed} == {other["handle"]}
        texts = [m["message"] for m in api.get(f"/api/messages/{group}", me).json]
        assert texts == ["hi ben", "hi ann"]
    # D from both sides
    for me in (ann, ben):
        reply = api.post(me, message=f"from {me['handle']}", message_group_uuid=group)
        assert reply.status_code == 200, reply.json
    # everyone else: as if it did not exist
    assert api.get(f"/api/messages/{group}", cat).status_code == 404
    refused = api.post(cat, message="let me in", message_group_uuid=group)
    assert (refused.status_code, refused.json) == (404, ["message_group_not_found"])
    # C by handle, either way round, goes into the pair's most recent conversation
    for me, other in ((ann, ben), (ben, ann)):
        sent = api.post(me, message=f"by handle from {me['handle']}", handle=other["handle"])
        assert (sent.status_code, sent.json["message_group_uuid"]) == (200, group)
    derived = layout.group_uuid_for(ann["uuid"], ben["uuid"])
    assert Ddb(week5).get(layout.header_key(derived)) is None, "no second conversation"
    assert tables.messages_page(Ddb(week5), derived, 10).items == []
    assert len(api.get(f"/api/messages/{group}", ann).json) == 6
    # cat's first message to ann is a new conversation, as ever
    assert api.post(cat, message="hello", handle=ann["handle"]).json["message_group_uuid"] == \
        layout.group_uuid_for(cat["uuid"], ann["uuid"])


def test_the_stream_lambda_moves_the_rows_of_a_week5_group(week5, people):
    from devstack.stream_worker import load_lambda

    ann, ben = people["ann"], people["ben"]
    client = Ddb(week5).client
    group = week5_group(client, week5.ddb_table, ann, ben, "hi", week5_time())
    newest = layout.message_item(group, ben, "newest", times.now_iso())
    Ddb(week5).put(newest)
    lambda_ = load_lambda()
    record = {"eventName": "INSERT", "dynamodb": {"NewImage": dynamo.serialize(newest),
                                                  "SequenceNumber": "1"}}
    answer = lambda_.handle_event({"Records": [record]}, aws.client(week5, "dynamodb"),
                                  lambda_.Config(table=week5.ddb_table))
    assert answer == {"batchItemFailures": []}
    for person in (ann, ben):
        [row] = [r for r in tables.groups_page(Ddb(week5), person["uuid"], 10).items]
        assert (row["sk"], row["message"]) == (newest["sk"], "newest")


def migrate(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DDB_MESSAGE_TABLE": settings.ddb_table}
    return subprocess.run([str(ROOT / "bin" / "ddb" / "migrate"), *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def items(settings: Settings) -> list[dict]:
    return sorted(Ddb(settings).scan_all(), key=lambda i: (i["pk"], i["sk"]))


def test_bin_ddb_migrate_brings_a_week5_table_to_the_current_layout(week5, people, api_over):
    ann, ben = people["ann"], people["ben"]
    client = Ddb(week5).client
    # times as a server in another time zone wrote them, and one whose microseconds were 0
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
    group = week5_group(client, week5.ddb_table, ann, ben, "m0", week5_time(2, start))
    sent = [week5_time(2, start + timedelta(minutes=i, microseconds=7 * i)) for i in range(1, 4)]
    for i, when in enumerate(sent, 1):
        client.put_item(TableName=week5.ddb_table, Item=week5_message(group, [ann, ben][i % 2], f"m{i}", when))
    before = items(week5)

    dry = migrate(week5, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 headers, 1 pair aliases and 6 re-keyed items" in dry.stdout
    assert "nothing written (--dry-run)" in dry.stdout and items(week5) == before

    done = migrate(week5)
    assert done.returncode == 0, done.stderr
    assert "wrote 1 headers, 1 pair aliases, re-keyed 6 items" in done.stdout
    table = Ddb(week5)
    assert table.get(layout.header_key(group))["participants"] == sorted([ann["uuid"], ben["uuid"]])
    derived = layout.group_uuid_for(ann["uuid"], ben["uuid"])
    assert table.get(layout.header_key(derived))["message_group_uuid"] == group
    assert week5_module.layout_version(table) == layout.LAYOUT_VERSION
    messages = table.query(layout.message_pk(group), limit=10).items
    # the same messages (same uuids, same order), at canonical UTC times
    assert [m["message"] for m in messages] == ["m0", "m1", "m2", "m3"]
    assert {m["message_uuid"] for m in messages} == {i["message_uuid"] for i in before if "message_uuid" in i}
    assert all(m["sk"] == times.iso(datetime.fromisoformat(m["sk"])) for m in messages)
    assert messages[0]["sk"] == times.iso(start)

    again = migrate(week5)
    assert again.returncode == 0 and "nothing written: the table is current" in again.stdout

    # after it, the steady-state costs are those of a table made by this code
    api = api_over(week5)
    api.backend.conversations.layout_current()
    calls = aws_calls(api.backend)
    assert api.post(ann, message="by handle", handle=ben["handle"]).json["message_group_uuid"] == group
    assert calls() == 2  # the header's put finds the alias, then the message into the old group
    assert api.post(ann, message="again", handle=ben["handle"]).json["message_group_uuid"] == group
    assert calls() == 1
    assert api.get(f"/api/messages/{group}", ben).status_code == 200
    assert calls() == 2  # its header (then cached for good), and the page
    assert api.get(f"/api/messages/{group}", ben).status_code == 200
    assert calls() == 1


def aws_calls(backend) -> Any:
    """A function returning how many DynamoDB calls the backend made since it was last called."""
    seen: list[str] = []
    backend.conversations.table.client.meta.events.register("before-call.dynamodb", lambda model, **_: seen.append(model.name))

    def since() -> int:
        count = len(seen)
        seen.clear()
        return count

    return since


def test_a_week5_conversation_is_blocked_before_and_after_bin_ddb_migrate(week5, people, api_over):
    """Issue 36: a block between two people of a week-5 group refuses their sends into it (its
    participants are its rows' owners until the migration gives it a header), and after."""
    ann, ben = people["ann"], people["ben"]
    group = week5_group(Ddb(week5).client, week5.ddb_table, ann, ben, "old times", week5_time())
    api = api_over(week5)
    blocked = api.http.put(f"/api/blocks/@{ben['handle']}", headers={"Authorization": ann["auth"]})
    assert blocked.status_code == 200
    try:
        for step in ("before", "after"):
            if step == "after":
                assert migrate(week5).returncode == 0
                api = api_over(week5)  # a process that never saw the old group
            into = api.post(ben, message=f"{step}: let me in", message_group_uuid=group)
            assert (into.status_code, into.json) == (403, ["recipient_unavailable"]), step
            by_handle = api.post(ben, message=f"{step}: by handle", handle=ann["handle"])
            assert (by_handle.status_code, by_handle.json) == (403, ["recipient_unavailable"]), step
            mine = api.post(ann, message=f"{step}: mine", message_group_uuid=group)
            assert (mine.status_code, mine.json) == (403, ["recipient_blocked"]), step
            assert [m["message"] for m in api.get(f"/api/messages/{group}", ben).json] == ["old times"]
    finally:
        api.http.delete(f"/api/blocks/@{ben['handle']}", headers={"Authorization": ann["auth"]})


def test_a_week5_conversation_is_edited_and_deleted_in_before_and_after_bin_ddb_migrate(week5, people, api_over):
    """Issue 36: a week-5 group's messages (random uuids, found in their conversation) are edited
    and deleted by their senders, and the stream Lambda's handler brings the week-5 rows along
    (participants: the rows' owners until the migration gives the group a header), and after."""
    from devstack.stream_worker import load_lambda

    ann, ben = people["ann"], people["ben"]
    table = Ddb(week5)
    earlier = datetime.now(timezone.utc) - timedelta(minutes=5)
    group = week5_group(table.client, week5.ddb_table, ann, ben, "hi ben", week5_time(at=earlier))
    lambda_ = load_lambda()

    def change(api, who, method, item, body=None):
        answer = api.http.open(f"/api/messages/{group}/{item['message_uuid']}", method=method,
                               headers={"Authorization": who["auth"]}, json=body)
        assert answer.status_code == 200, answer.json
        item = table.get(layout.message_key(group, item["sk"]))
        record = {"eventName": "MODIFY", "dynamodb": {"NewImage": dynamo.serialize(item), "SequenceNumber": "1"}}
        for _ in range(2):  # delivered twice
            assert lambda_.handle_event({"Records": [record]}, table.client,
                                        lambda_.Config(table=week5.ddb_table)) == {"batchItemFailures": []}

    def shown(api):
        texts = [m["message"] for m in api.get(f"/api/messages/{group}", ann).json]
        rows = {p["handle"]: [g["message"] for g in api.get("/api/message_groups", p).json if g["uuid"] == group]
                for p in (ann, ben)}
        return texts, rows

    for step in ("before", "after"):
        if step == "after":
            assert migrate(week5).returncode == 0
        api = api_over(week5)
        when = week5_time()
        last = dynamo.deserialize(week5_message(group, ben, f"{step}: tpyo", when))
        if step == "before":
            table.put(last)
            for owner, other in ((ann, ben), (ben, ann)):  # as the week-5 backend moved its rows
                [row] = tables.groups_page(table, owner["uuid"], 10).items
                table.delete_if({"pk": row["pk"], "sk": row["sk"]}, {})
                table.put({**row, "sk": when, "message": last["message"]})
        else:
            sent = api.post(ben, message=f"{step}: tpyo", message_group_uuid=group).json
            last = table.get(layout.message_key(group, sent["created_at"]))
            lambda_.handle_event({"Records": [{"eventName": "INSERT", "dynamodb": {
                "NewImage": dynamo.serialize(last), "SequenceNumber": "1"}}]}, table.client,
                lambda_.Config(table=week5.ddb_table))
        change(api, ben, "PATCH", last, {"message": f"{step}: typo"})
        texts, rows = shown(api)
        assert texts[-1] == f"{step}: typo" and rows == {ann["handle"]: [f"{step}: typo"], ben["handle"]: [f"{step}: typo"]}
        change(api, ben, "DELETE", last)
        texts, rows = shown(api)
        assert f"{step}: typo" not in texts
        assert rows == {ann["handle"]: [texts[-1]], ben["handle"]: [texts[-1]]}, step
