"""The conversation store's parts one by one, over the in-memory table: who takes part
(participants.py), reading a stream record (records.py); and what the Lambdas share (their
table's names, their packages' modules)."""
from __future__ import annotations

import pytest

from domain.conversations import Conversation
from lib import lambda_support
from lib.config import ROOT
from lib.conversations import layout, table_setup
from lib.conversations.participants import Participants
from lib.conversations.records import NewMessage, RowWritten, change_of, new_message
from lib.conversations.rows import IndexBehind
from lib.conversations.store import ConversationStore
from lib.ddb import serialize
from tests.memory_table import MemoryTable

ANA = {"uuid": "11111111-1111-4111-8111-111111111111", "display_name": "Ana A", "handle": "ana"}
BO = {"uuid": "22222222-2222-4222-8222-222222222222", "display_name": "Bo B", "handle": "bo"}
T1 = "2030-01-01T00:00:01.000000+00:00"


@pytest.fixture
def table():
    made = MemoryTable(exists=False)
    table_setup.create_table(made)
    return made


def group_of(store: ConversationStore) -> str:
    return store.send_to_user(ANA, BO, "hi").message.message_group_uuid


# -- who takes part -----------------------------------------------------------------------------------
def test_the_header_names_both_participants_and_how_to_make_their_rows(table):
    group = group_of(ConversationStore(table))
    header = Participants(table).header(group)
    assert header.owners == tuple(sorted([ANA["uuid"], BO["uuid"]]))
    assert header.rows[ANA["uuid"]]["user_handle"] == "bo" and header.rows[BO["uuid"]]["user_handle"] == "ana"


def test_what_a_header_says_is_read_once_and_shared_by_whoever_keeps_the_cache(table):
    group = group_of(ConversationStore(table))
    reads = []
    real_get = table.get
    table.get = lambda key, **kw: (reads.append(key), real_get(key, **kw))[1]  # type: ignore[method-assign]
    first = Participants(table)
    header = first.header(group)
    later = Participants(table, groups=first.groups)  # a Lambda's next invocation, same container
    assert later.header(group) == header and later.of(group) == header.owners
    assert reads == [layout.header_key(group)], "one read in all"


def test_a_first_message_teaches_its_process_the_participants_without_a_read(table):
    store = ConversationStore(table)
    group = group_of(store)
    assert store.participants.groups.get(group).owners == tuple(sorted([ANA["uuid"], BO["uuid"]]))


def test_a_stranger_is_never_answered_from_the_cache(table):
    store = ConversationStore(table)
    group = group_of(store)
    table.delete_if(layout.header_key(group), {})  # were the answer cached, this would not change it
    assert store.is_participant(group, ANA["uuid"]), "a participant: from the cache"
    assert not store.is_participant(group, "33333333-3333-4333-8333-333333333333")


def test_a_headerless_groups_participants_are_its_rows_owners_once_both_show(table):
    group = "6f1c3c55-0000-4000-8000-00000000abcd"
    mine, theirs = layout.message_rows(ANA, BO, group, "from week 5", T1)
    table.put(mine)
    table.freeze_index()
    table.put(theirs)
    participants = Participants(table)
    with pytest.raises(IndexBehind):
        participants.both(group)
    table.catch_up_index()
    queries = []
    real_query = table.query_index
    table.query_index = lambda *a: (queries.append(a), real_query(*a))[1]  # type: ignore[method-assign]
    assert participants.both(group) == participants.both(group) == tuple(sorted([ANA["uuid"], BO["uuid"]]))
    assert len(queries) == 1, "both rows seen once: the participants are known for good"
    assert participants.header(group) is None, "still no header: the row mover adopts it"


def test_on_a_migrated_table_a_group_without_a_header_is_no_conversation_for_the_api(table):
    assert Participants(table).of("6f1c3c55-0000-4000-8000-00000000beef") is None
    assert Participants(table).both("6f1c3c55-0000-4000-8000-00000000beef") == ()


def test_an_alias_header_leads_a_pair_to_its_week5_conversation(table):
    old = "6f1c3c55-0000-4000-8000-00000000aaaa"
    derived = layout.group_uuid_for(ANA["uuid"], BO["uuid"])
    table.put({**layout.header_item(derived, [ANA["uuid"], BO["uuid"]], T1), "message_group_uuid": old})
    store = ConversationStore(table)
    sent = store.send_to_user(ANA, BO, "into the old one")
    assert sent.message.message_group_uuid == old
    assert store.participants.conversation_of_pair(derived, ANA["uuid"], BO["uuid"]) == old


def test_an_alias_read_first_through_its_uuid_still_leads_to_the_week5_conversation(table):
    old = "6f1c3c55-0000-4000-8000-00000000aaab"
    derived = layout.group_uuid_for(ANA["uuid"], BO["uuid"])
    table.put({**layout.header_item(derived, [ANA["uuid"], BO["uuid"]], T1), "message_group_uuid": old})
    store = ConversationStore(table)
    assert store.is_participant(derived, ANA["uuid"])  # a client asked for the pair's derived uuid
    assert store.send_to_user(ANA, BO, "into the old one").message.message_group_uuid == old


# -- reading a stream record ----------------------------------------------------------------------
def record(name: str, image: dict | None) -> dict:
    made = {"eventName": name, "dynamodb": {"SequenceNumber": "1"}}
    if image is not None:
        made["dynamodb"]["NewImage"] = serialize(image)
    return made


def test_an_inserted_message_reads_as_a_new_message_with_its_sender():
    item = layout.message_item("g-1", ANA, "hi", T1, "m-1")
    change = change_of(record("INSERT", item))
    assert change == NewMessage("g-1", T1, "hi", "m-1", ANA["uuid"], "Ana A", "ana")
    assert change.message.display_name == "Ana A" and new_message(record("INSERT", item)) == change


def test_a_written_row_reads_as_its_owners_conversation_and_marker():
    row = layout.group_row(BO["uuid"], ANA, "g-1", "hi", T1, unread_count=150, read_up_to="2030")
    change = change_of(record("MODIFY", row))
    assert change == RowWritten(BO["uuid"], Conversation("g-1", "Ana A", "ana", "hi", T1, 99, ANA["uuid"]), "2030")
    assert new_message(record("MODIFY", row)) is None


@pytest.mark.parametrize("name, image", [
    ("REMOVE", layout.message_item("g-1", ANA, "gone", T1, "m-2")),
    ("MODIFY", layout.message_item("g-1", ANA, "changed", T1, "m-3")),
    ("INSERT", layout.header_item("g-1", [ANA["uuid"], BO["uuid"]], T1)),
    ("INSERT", layout.idempotency_item(ANA["uuid"], "k", "f", "g-1", "m-4", T1, False)),
    ("INSERT", None),
    ("INSERT", {"pk": "MSG#g-1", "message_uuid": "m-5"}),  # no sort key
])
def test_anything_else_reads_as_nothing(name, image):
    assert change_of(record(name, image)) is None


# -- what the Lambdas share -----------------------------------------------------------------------
def test_a_lambdas_table_and_index_default_to_the_layouts_names():
    assert lambda_support.table_names({}) == (layout.TABLE_NAME, layout.GSI_NAME) == ("cruddur-messages",
                                                                                       "message-group-sk-index")
    assert lambda_support.table_names({"DDB_MESSAGE_TABLE": "t", "DDB_GSI_NAME": "i"}) == ("t", "i")


def test_each_lambda_is_packaged_with_exactly_the_modules_it_imports():
    from cli.aws import EVENTS_LAMBDA, POST_CONFIRMATION_LAMBDA, STREAM_LAMBDA, files_of

    def names(handler):
        return {str(p.relative_to(ROOT)) for p in files_of(handler)}

    stream, events, sign_up = names(STREAM_LAMBDA), names(EVENTS_LAMBDA), names(POST_CONFIRMATION_LAMBDA)
    assert {"lib/conversations/stream.py", "lib/conversations/participants.py", "domain/unread.py"} <= stream
    assert not any(n.startswith(("db/", "services/")) or n in ("lib/event_log.py", "lib/config.py") for n in stream)
    assert {"lib/event_log.py", "lib/conversations/events.py", "domain/live_events.py",
            "db/sql/events/insert.sql"} <= events
    assert "lib/conversations/stream.py" not in events, "the events Lambda moves no rows"
    assert {"lib/users.py", "domain/identity.py", "db/sql/users/create.sql"} <= sign_up
    assert not any("conversations" in n for n in sign_up), "the sign-up Lambda has no table"


@pytest.fixture
def stream_lambda():
    from devstack import lambdas
    module = lambdas.load(lambdas.LAMBDAS / "cruddur-messaging-stream.py")
    yield module
    module.reset()


def test_client_and_config_come_from_the_environment(stream_lambda):
    client = stream_lambda.make_client({"AWS_REGION": "eu-west-2"})
    assert client.meta.region_name == "eu-west-2"
    assert client.meta.config.retries["mode"] == "standard"
    local = stream_lambda.make_client({"AWS_DEFAULT_REGION": "ap-south-1",
                                       "AWS_ENDPOINT_URL": "http://127.0.0.1:8000"})
    assert (local.meta.region_name, local.meta.endpoint_url) == ("ap-south-1", "http://127.0.0.1:8000")
    assert stream_lambda.load_config({}) == stream_lambda.Config("cruddur-messages", "message-group-sk-index")
    assert stream_lambda.load_config({"DDB_MESSAGE_TABLE": "t", "DDB_GSI_NAME": "i"}).table == "t"


def test_a_lambdas_log_line_is_one_json_object_with_its_fields_as_keys():
    import json
    import logging

    formatter = lambda_support.JsonFormatter()
    record = logging.LogRecord("cruddur-x", logging.INFO, __file__, 1, "batch done", None, None)
    record.fields = {"records": 3, "retry_from": None}
    line = json.loads(formatter.format(record))
    assert (line["message"], line["level"], line["records"], line["retry_from"]) == ("batch done", "INFO", 3, None)
    assert line["time"].endswith("+00:00")


def test_a_lambda_reads_its_database_url_from_its_environment():
    assert lambda_support.connection_url({"CONNECTION_URL": "postgresql://u@h/db"}) == "postgresql://u@h/db"


def test_a_page_of_the_log_is_full_at_its_count_or_its_bytes():
    from lib import event_log
    from lib.event_log import LoggedEvent

    small = [LoggedEvent(n, "message", "{}") for n in range(3)]
    assert not event_log.is_full(small) and event_log.is_full(small, limit=3)
    assert event_log.is_full([LoggedEvent(1, "message", "x" * 100)], max_bytes=100)
    assert event_log.event_id(42) == "42"


@pytest.mark.parametrize("value, shown", [
    ("/api/events?ticket=abc123", "/api/events?ticket=REDACTED"),
    ("http://h/api/events?x=1&ticket=abc&y=2", "http://h/api/events?x=1&ticket=REDACTED&y=2"),
    ("ticket=abc", "ticket=REDACTED"),
    ("/api/messages?cursor=abc", "/api/messages?cursor=abc"),
])
def test_a_traces_urls_never_carry_a_ticket(value, shown):
    from lib import telemetry

    class Span:
        def __init__(self):
            self.attributes = {"http.target": value}

        def is_recording(self):
            return True

        def set_attribute(self, key, new):
            self.attributes[key] = new

    span = Span()
    telemetry.without_secrets(span, "200 OK", [])
    assert span.attributes["http.target"] == shown
