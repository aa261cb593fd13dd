"""The scripts in bin/, run as subprocesses against the suite's local stack (whose settings the
`settings` fixture exports to os.environ)."""
from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
from jose import jwt

from lib import config
from lib import db as pg_admin
from devstack import seed as local_seed
from lib.db import Db
from lib.sql_files import template
from lib.conversations.layout import group_uuid_for
from lib.ddb import Ddb
from devstack import free_port
from tests import tables

ROOT = config.ROOT
SCRIPTS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bin").rglob("*")
                 if p.is_file() and p.parent != ROOT / "bin")
TIMEOUT = 60


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / args[0]), *args[1:]], env=env or dict(os.environ),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)


def run_all(commands: list[list[str]], env: dict[str, str] | None = None) -> list[subprocess.CompletedProcess]:
    """Run commands in parallel (each one is mostly interpreter start-up)."""
    procs = [subprocess.Popen([str(ROOT / c[0]), *c[1:]], env=env or dict(os.environ),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in commands]
    results = []
    for command, proc in zip(commands, procs):
        out, err = proc.communicate(timeout=TIMEOUT)
        results.append(subprocess.CompletedProcess(command, proc.returncode, out, err))
    return results


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def aws_env(**extra: str) -> dict[str, str]:
    """An environment where nothing could reach AWS: no endpoint override (so --prod or not, the
    AWS endpoints are what a script would use) and bogus credentials."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "PROD_CONNECTION_URL")}
    env.update(AWS_ACCESS_KEY_ID="bogus", AWS_SECRET_ACCESS_KEY="bogus",
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true", **extra)
    return env


def items_and_capacity(stdout: str) -> tuple[list[dict], str]:
    lines = stdout.strip().splitlines()
    assert lines[-1].startswith("consumed capacity: "), stdout
    return [json.loads(line) for line in lines[:-1]], lines[-1]


@pytest.fixture(scope="module")
def users(settings) -> dict[str, dict]:
    db = Db(settings)
    try:
        return {u["handle"]: u for u in db.query_array_json(template("users", "list"))}
    finally:
        db.close()


@pytest.fixture(scope="module")
def seeded_env(settings):
    """The environment of a table of its own holding only the seeded conversation: other tests
    send messages through the shared one."""
    seeded = settings.with_(ddb_table=f"test-seeded-{uuid.uuid4().hex[:8]}")
    tables.create_table(Ddb(seeded))
    db = Db(seeded)
    try:
        local_seed.seed(Ddb(seeded), db)
    finally:
        db.close()
    yield {**os.environ, "DDB_MESSAGE_TABLE": seeded.ddb_table}
    Ddb(seeded).delete_table()


def test_every_script_answers_help():
    assert len(SCRIPTS) >= 17
    for result in run_all([[s, "--help"] for s in SCRIPTS]):
        out = ok(result)
        assert "Usage:" in out and "--help" in out, result.args
        # the usage line names the script as it was run, not the Python module behind it
        usage = out.splitlines()[0].split()
        assert usage[0] == "Usage:" and usage[1].endswith(result.args[0]), usage
        assert "--prod" in out, f"{result.args[0]} has no --prod"


def test_connect_uses_psql():
    assert "psql" in ok(run("bin/db/connect", "--help"))


def test_list_tables_shows_the_table(settings):
    assert settings.ddb_table in ok(run("bin/ddb/list-tables")).splitlines()


def test_get_conversation_prints_messages_and_capacity(seeded_env, users):
    found, capacity = items_and_capacity(ok(run("bin/ddb/patterns/get-conversation", "--limit", "5",
                                                env=seeded_env)))
    assert len(found) == 5
    group = group_uuid_for(users["andrewbrown"]["uuid"], users["bayko"]["uuid"])
    assert {m["pk"] for m in found} == {f"MSG#{group}"}
    sks = [m["sk"] for m in found]
    assert sks == sorted(sks, reverse=True), "newest first"
    assert json.loads(capacity.split(": ", 1)[1])["TableName"] == seeded_env["DDB_MESSAGE_TABLE"]

    explicit, _ = items_and_capacity(ok(run("bin/ddb/patterns/get-conversation", group, env=seeded_env)))
    assert len(explicit) == 20 and explicit[:5] == found


def test_list_conversations_prints_group_rows_and_capacity(seeded_env, users):
    andrew, bayko, londo = run_all([["bin/ddb/patterns/list-conversations"],
                                    ["bin/ddb/patterns/list-conversations", "bayko"],
                                    ["bin/ddb/patterns/list-conversations", "londo"]], env=seeded_env)
    rows, capacity = items_and_capacity(ok(andrew))
    assert [r["user_handle"] for r in rows] == ["bayko"]
    assert rows[0]["pk"] == f"GRP#{users['andrewbrown']['uuid']}"
    assert "CapacityUnits" in capacity
    rows, _ = items_and_capacity(ok(bayko))
    assert [r["user_handle"] for r in rows] == ["andrewbrown"]
    rows, _ = items_and_capacity(ok(londo))
    assert rows == []


def test_an_argument_containing_prod_does_not_switch_to_prod(settings):
    # not --prod: still the local PostgreSQL (which has no such user) and the local endpoint
    result = run("bin/ddb/patterns/list-conversations", "prod-user")
    assert result.returncode != 0
    assert "no user with handle 'prod-user'" in result.stderr
    found, capacity = items_and_capacity(ok(run("bin/ddb/patterns/get-conversation", "prod-group")))
    assert found == [] and settings.ddb_table in capacity


def test_token_is_an_access_token_of_the_user(users):
    out = ok(run("bin/cognito/token", "bayko"))
    claims = jwt.get_unverified_claims(out.strip().splitlines()[-1])
    assert claims["token_use"] == "access"
    assert claims["sub"] == users["bayko"]["cognito_user_id"]
    result = run("bin/cognito/token", "nobody-here")
    assert result.returncode != 0 and "no user with handle 'nobody-here'" in result.stderr


def test_list_users_shows_the_seeded_users(users):
    out = ok(run("bin/cognito/list-users"))
    for handle in ("andrewbrown", "bayko", "londo"):
        # (anyone may sign up with preferred_username = a seeded handle: the sub tells them apart)
        [line] = [line for line in out.splitlines() if users[handle]["cognito_user_id"] in line]
        assert line.split()[0] == handle and users[handle]["email"] in line


def test_update_cognito_user_ids_relinks_users(settings, users):
    db = Db(settings)
    update = "UPDATE public.users SET cognito_user_id = %(sub)s WHERE handle = 'bayko'"
    try:
        db.query_commit(update, {"sub": None})
        out = ok(run("bin/db/update-cognito-user-ids"))
        restored = db.query_value("SELECT cognito_user_id FROM public.users WHERE handle = 'bayko'")
    finally:
        db.query_commit(update, {"sub": users["bayko"]["cognito_user_id"]})
        db.close()
    assert restored == users["bayko"]["cognito_user_id"]
    assert f"linked     bayko {restored}" in out.splitlines()
    assert f"unchanged  andrewbrown {users['andrewbrown']['cognito_user_id']}" in out.splitlines()


def test_db_scripts_are_idempotent(settings):
    db = Db(settings)
    try:
        count = "SELECT (SELECT count(*) FROM public.users) * 1000 + (SELECT count(*) FROM public.activities)"
        before = db.query_value(count)
        create, schema, seed = run_all([["bin/db/create"], ["bin/db/schema-load"], ["bin/db/seed"]])
        assert "already exists" in ok(create)
        assert "schema loaded" in ok(schema)
        assert "seed loaded" in ok(seed)
        assert "ready" in ok(run("bin/db/setup"))
        assert db.query_value(count) == before
    finally:
        db.close()


def test_cognito_setup_adds_nobody_twice():
    ok(run("bin/cognito/setup"))  # whoever other tests added to PostgreSQL
    assert "added nobody" in ok(run("bin/cognito/setup"))


def test_scan_prints_the_items(fresh_table):
    Ddb(fresh_table).put({"pk": "MSG#g1", "sk": "2025-01-01T00:00:00.000000+00:00", "message": "hi"})
    out = ok(run("bin/ddb/scan", env={**os.environ, "DDB_MESSAGE_TABLE": fresh_table.ddb_table}))
    printed = [json.loads(line) for line in out.splitlines()]
    assert [i["message"] for i in printed if i["pk"] != "META#layout"] == ["hi"]


def test_seed_script_writes_the_conversation_once(fresh_table):
    env = {**os.environ, "DDB_MESSAGE_TABLE": fresh_table.ddb_table}
    first = run("bin/ddb/seed", env=env)
    assert "seeded" in ok(first) and "batch write calls" in first.stdout
    assert "seeding" in first.stderr, "progress bar on stderr"
    assert "already present" in ok(run("bin/ddb/seed", env=env))
    count = Ddb(fresh_table).client.scan(TableName=fresh_table.ddb_table, Select="COUNT")["Count"]
    assert count >= 23
    # --force looks for what is missing: here nothing, and it says so (not "use --force")
    forced = ok(run("bin/ddb/seed", "--force", env=env))
    assert "nothing was missing" in forced and "--force" not in forced
    assert Ddb(fresh_table).client.scan(TableName=fresh_table.ddb_table, Select="COUNT")["Count"] == count


def test_schema_load_and_drop(settings):
    name = f"test-script-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DDB_MESSAGE_TABLE": name}
    client = Ddb(settings).client
    try:
        assert "created" in ok(run("bin/ddb/schema-load", "--provisioned", "--rcu", "2", "--wcu", "3", env=env))
        table = client.describe_table(TableName=name)["Table"]
        assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 3
        again = ok(run("bin/ddb/schema-load", env=env))
        assert "already complete (index, stream, time to live, layout mark)" in again
        assert "deleted" in ok(run("bin/ddb/drop", env=env))
        assert name not in client.list_tables()["TableNames"]
        assert "does not exist" in ok(run("bin/ddb/drop", env=env))
    finally:
        Ddb(settings.with_(ddb_table=name)).delete_table()


# -- --prod ----------------------------------------------------------------------------------------

def test_scan_refuses_prod():
    result = run("bin/ddb/scan", "--prod", env=aws_env())
    assert result.returncode != 0
    assert "scan runs against the local stack only" in result.stderr


def test_token_and_cognito_setup_refuse_prod():
    for result in run_all([["bin/cognito/token", "--prod", "bayko"], ["bin/cognito/setup", "--prod"]],
                          env=aws_env()):
        assert result.returncode != 0 and "local stack only" in result.stderr


def test_ddb_drop_prod_without_terminal_refuses(fresh_table):
    result = run("bin/ddb/drop", "--prod", env=aws_env(DDB_MESSAGE_TABLE=fresh_table.ddb_table))
    assert result.returncode != 0
    assert f"refusing to delete the table {fresh_table.ddb_table} on AWS" in result.stderr
    assert fresh_table.ddb_table in Ddb(fresh_table).client.list_tables()["TableNames"]


def test_db_drop_prod_without_terminal_refuses(settings):
    # a scratch database stands in for production: it must survive the refusal
    scratch = settings.with_(connection_url=settings.connection_url.rsplit("/", 1)[0]
                             + f"/prodguard_{uuid.uuid4().hex[:8]}")
    assert pg_admin.create_database(scratch.connection_url)
    try:
        for args in (["bin/db/drop", "--prod"], ["bin/db/setup", "--prod", "--reset"]):
            result = run(*args, env=aws_env(PROD_CONNECTION_URL=scratch.connection_url))
            assert result.returncode != 0, args
            assert "refusing to drop the database prodguard_" in result.stderr
            assert not pg_admin.create_database(scratch.connection_url), "the database still exists"
    finally:
        pg_admin.drop_database(scratch.connection_url)


def test_db_scripts_with_prod_need_prod_connection_url():
    for result in run_all([["bin/db/drop", "--prod", "--yes"], ["bin/db/create", "--prod"],
                           ["bin/ddb/patterns/list-conversations", "--prod"]], env=aws_env()):
        assert result.returncode != 0, result.args
        assert "--prod needs PROD_CONNECTION_URL to be set" in result.stderr


def test_scripts_say_in_one_line_when_the_stack_is_not_running():
    # nothing listens where the environment points: the scripts say so, and find no other stack
    env = {**os.environ, "CONNECTION_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/cruddur",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "DB_TIMEOUT_SECONDS": "0.5"}
    conversations, tables, create = run_all([["bin/ddb/patterns/list-conversations"],
                                             ["bin/ddb/list-tables"], ["bin/db/create"]], env=env)
    for result, target in ((conversations, "PostgreSQL at 127.0.0.1"), (tables, env["AWS_ENDPOINT_URL"]),
                           (create, "PostgreSQL at 127.0.0.1")):
        assert result.returncode != 0, result.args
        [line] = result.stderr.strip().splitlines()  # no trace, no repeated warnings
        assert line.startswith("Error: cannot reach") and target in line
        assert line.endswith("(is ./bin/dev running?)")


# -- scripts act only where they say ---------------------------------------------------------------

def pg_port(settings) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(settings.connection_url)["port"])


def test_db_scripts_find_the_embedded_database_by_local_pg_port(settings):
    """Without CONNECTION_URL, bin/db/* talk to the embedded PostgreSQL on LOCAL_PG_PORT."""
    env = {k: v for k, v in os.environ.items() if k != "CONNECTION_URL"}
    env["LOCAL_PG_PORT"] = pg_port(settings)
    assert "database cruddur already exists" in ok(run("bin/db/create", env=env))


def test_db_drop_asks_before_dropping_anything_but_the_embedded_database(settings):
    scratch = settings.connection_url.rsplit("/", 1)[0] + f"/notlocal_{uuid.uuid4().hex[:8]}"
    assert pg_admin.create_database(scratch)
    try:
        # the same server, but LOCAL_PG_PORT says the embedded one is elsewhere: not ours to drop
        elsewhere = {**os.environ, "CONNECTION_URL": scratch, "LOCAL_PG_PORT": "1"}
        for args in (["bin/db/drop"], ["bin/db/setup", "--reset"]):
            result = run(*args, env=elsewhere)
            assert result.returncode != 0, args
            assert "refusing to drop the database notlocal_" in result.stderr
            assert "not the embedded local database" in result.stderr
            assert not pg_admin.create_database(scratch), "the database still exists"
        # the embedded database: no question asked
        embedded = {**os.environ, "CONNECTION_URL": scratch, "LOCAL_PG_PORT": pg_port(settings)}
        assert "dropped" in ok(run("bin/db/drop", env=embedded))
    finally:
        pg_admin.drop_database(scratch)


def test_connect_keeps_the_password_off_the_command_line():
    from cli.db import psql_invocation

    arguments, env = psql_invocation("postgresql://app:s3cr%40t@db.example:6543/cruddur?sslmode=require",
                                     {"HOME": "/home/x"})
    assert not any("s3cr" in argument for argument in arguments)
    assert env == {"HOME": "/home/x", "PGPASSWORD": "s3cr@t"}
    assert "host=db.example" in arguments[-1] and "port=6543" in arguments[-1]
    assert "sslmode=require" in arguments[-1] and "dbname=cruddur" in arguments[-1]


# -- bin/db/migrate: an existing database of the bootcamp's week-5 schema --------------------------

# The bootcamp's week-5 db/schema.sql (its uuid_generate_v4() defaults, from the uuid-ossp
# extension the embedded PostgreSQL lacks, written as gen_random_uuid()).
WEEK5_SCHEMA = """
CREATE TABLE public.users (
  uuid UUID default gen_random_uuid() primary key,
  display_name text NOT NULL,
  handle text NOT NULL,
  email text NOT NULL,
  cognito_user_id text NOT NULL,
  created_at timestamp default current_timestamp NOT NULL
);
CREATE TABLE public.activities (
  uuid UUID default gen_random_uuid() primary key,
  user_uuid UUID REFERENCES public.users(uuid) NOT NULL,
  message text NOT NULL,
  replies_count integer default 0,
  reposts_count integer default 0,
  likes_count integer default 0,
  reply_to_activity_uuid integer,
  expires_at timestamp,
  created_at timestamp default current_timestamp NOT NULL
);
INSERT INTO public.users (display_name, handle, email, cognito_user_id) VALUES
  ('Andrew Brown', 'andrewbrown', 'a@br.com', 'MOCK'), ('Andrew Bayko', 'bayko', 'a@ba.com', 'MOCK');
INSERT INTO public.activities (user_uuid, message, expires_at, created_at)
SELECT uuid, 'from week 5', '2099-01-01 12:00:00', '2024-01-01 12:00:00' FROM public.users
WHERE handle = 'andrewbrown';
"""


def test_bin_db_migrate_converts_a_week5_database_and_keeps_its_rows(settings):
    import psycopg

    url = settings.connection_url.rsplit("/", 1)[0] + f"/week5_{uuid.uuid4().hex[:8]}"
    pg_admin.create_database(url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(WEEK5_SCHEMA)
        env = {**os.environ, "CONNECTION_URL": url}
        for _ in range(2):  # and again: nothing changes the second time
            assert "migrated" in ok(run("bin/db/migrate", env=env))
        with psycopg.connect(url, autocommit=True) as conn:
            types = dict(conn.execute(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name IN ('reply_to_activity_uuid', 'expires_at', "
                "'created_at', 'cognito_user_id')").fetchall())
            assert types["activities.reply_to_activity_uuid"] == "uuid"
            assert types["activities.expires_at"] == types["activities.created_at"] == \
                types["users.created_at"] == "timestamp with time zone"
            assert conn.execute("SELECT count(*), count(cognito_user_id) FROM public.users").fetchone() == (2, 0)
            crud = conn.execute("SELECT public.activity_json(o) FROM public.activity_objects o").fetchone()[0]
            assert (crud["message"], crud["created_at"], crud["expires_at"]) == \
                ("from week 5", "2024-01-01T12:00:00.000000+00:00", "2099-01-01T12:00:00.000000+00:00")
        # and the API serves it
        assert "seed loaded" in ok(run("bin/db/seed", env=env))
    finally:
        pg_admin.drop_database(url)


def test_a_script_with_a_variable_it_cannot_use_is_a_one_line_error():
    result = run("bin/ddb/list-tables", env={**os.environ, "LOCAL_AWS_PORT": "port"})
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: LOCAL_AWS_PORT must be a whole number from 1 to 65535, not 'port'"


def test_schema_load_completes_a_table_a_run_left_half_made(settings):
    """Issue 26, item 2: a table made without its index, its stream, TTL and the layout mark (a
    first run stopped half-way, or made elsewhere) is completed by the next schema-load, which
    says what it did; the run after that finds nothing missing."""
    from lib.conversations import layout
    name = f"test-half-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DDB_MESSAGE_TABLE": name}
    half = Ddb(settings.with_(ddb_table=name))
    definition = layout.table_definition(name)
    definition.pop("GlobalSecondaryIndexes")
    definition.pop("StreamSpecification")
    definition["AttributeDefinitions"] = definition["AttributeDefinitions"][:2]
    try:
        half.create_table(definition)
        out = ok(run("bin/ddb/schema-load", env=env))
        for said in ("added the index message-group-sk-index", "turned the stream on",
                     "time to live on expires_at", "wrote the layout mark"):
            assert said in out, out
        table = half.describe()
        assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [layout.GSI_NAME]
        assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        assert half.ttl() == ("ENABLED", "expires_at") and half.get(layout.LAYOUT_KEY)["version"] == 2
        assert "already complete" in ok(run("bin/ddb/schema-load", env=env))
    finally:
        half.delete_table()


def test_schema_load_leaves_the_mark_to_the_migration_on_a_table_with_data(settings):
    """A table without the mark that holds items may be the week-5 backend's: schema-load does not
    claim it is current (that would hide its headerless groups); it points at bin/ddb/migrate."""
    from lib.conversations import layout
    name = f"test-old-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DDB_MESSAGE_TABLE": name}
    table = Ddb(settings.with_(ddb_table=name))
    try:
        table.create_table(layout.table_definition(name))
        table.put(layout.group_row("u1", {"uuid": "u2", "display_name": "B", "handle": "b"}, "g", "hi",
                                   "2024-01-01T00:00:00.000000+00:00"))
        out = ok(run("bin/ddb/schema-load", env=env))
        assert "bin/ddb/migrate" in out and table.get(layout.LAYOUT_KEY) is None
    finally:
        table.delete_table()


def test_a_refused_operation_names_itself_and_what_the_store_said(settings):
    """Issue 26, item 4: a one-line error names the operation and the store's message, or says the
    store gave none."""
    from botocore.exceptions import ClientError

    from cli.common import service_error
    from lib.ddb import translate
    refused = ClientError({"Error": {"Code": "UnknownOperationException", "Message": ""}}, "UpdateTimeToLive")
    assert str(translate(refused)) == "UpdateTimeToLive refused: UnknownOperationException (the store gave no message)"
    assert service_error(translate(refused), settings) == str(translate(refused))
    said = ClientError({"Error": {"Code": "ValidationException", "Message": "bad key"}}, "PutItem")
    assert service_error(said, settings) == "PutItem refused: ValidationException: bad key"
