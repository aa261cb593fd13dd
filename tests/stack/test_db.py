"""lib/db.py against the suite's embedded PostgreSQL (seeded like ./bin/dev)."""
from __future__ import annotations

import os
import stat
import uuid

import psycopg
import pytest

from lib.db import DatabaseUnavailable, Db
from lib.sql_files import template
from devstack import LocalPostgres, free_port, postgres_bin_path

INSERT_USER = """
INSERT INTO public.users (display_name, handle, email, cognito_user_id)
VALUES (%(display_name)s, %(handle)s, %(email)s, %(cognito_user_id)s)
RETURNING uuid
"""


@pytest.fixture
def db(settings):
    db = Db(settings)
    created: list[str] = []
    db.created_handles = created  # type: ignore[attr-defined]
    yield db
    if created:
        db.query_commit("DELETE FROM public.users WHERE handle = ANY(%(h)s)", {"h": created})
    db.close()


def add_user(db, handle: str | None = None, cognito_user_id: str | None = None):
    handle = handle or f"t_{uuid.uuid4().hex[:10]}"
    new_uuid = db.query_commit(INSERT_USER, {"display_name": "Test User", "handle": handle,
                                             "email": f"{handle}@example.com",
                                             "cognito_user_id": cognito_user_id})
    db.created_handles.append(handle)  # only once inserted: never delete a seeded user
    return new_uuid


def test_query_value(db):
    assert db.query_value("SELECT %(a)s::int + 1", {"a": 41}) == 42
    assert db.query_value("SELECT 1 WHERE false") is None


def test_query_object_json_gives_json_types(db):
    user = db.query_object_json(template("users", "short"), {"handle": "bayko"})
    assert set(user) == {"uuid", "handle", "display_name"}
    assert user["handle"] == "bayko" and user["display_name"] == "Andrew Bayko"
    assert isinstance(user["uuid"], str) and uuid.UUID(user["uuid"])
    assert db.query_object_json(template("users", "short"), {"handle": "nobody-here"}) is None


def test_query_object_json_takes_the_first_row_only(db):
    row = db.query_object_json("SELECT * FROM (VALUES (2, 'b'), (1, 'a')) v(n, s) ORDER BY n")
    assert row == {"n": 1, "s": "a"}


def test_query_array_json_keeps_order(db):
    users = db.query_array_json(template("users", "list"))
    handles = [u["handle"] for u in users]
    assert handles == sorted(handles)
    assert {"andrewbrown", "bayko", "londo"} <= set(handles)
    assert all(isinstance(u["uuid"], str) for u in users)
    assert db.query_array_json("SELECT 1 AS one WHERE false") == []


def test_query_commit_returning_and_rowcount(db):
    new_uuid = add_user(db, "t_commit")
    assert isinstance(new_uuid, uuid.UUID)
    assert db.query_value("SELECT handle FROM public.users WHERE uuid = %(u)s", {"u": new_uuid}) == "t_commit"
    update = "UPDATE public.users SET cognito_user_id = %(cognito_user_id)s WHERE handle = %(handle)s"
    assert db.query_commit(update, {"handle": "t_commit", "cognito_user_id": "sub-1"}) == 1
    assert db.query_commit(update, {"handle": "nobody-here", "cognito_user_id": "sub-2"}) == 0
    # autocommit: another connection sees the write
    with psycopg.connect(db.pool.conninfo) as other:
        assert other.execute("SELECT cognito_user_id FROM public.users WHERE handle = 't_commit'").fetchone() == ("sub-1",)


def test_injection_looking_values_are_data(db):
    evil = "x'); DROP TABLE public.users; --"
    assert db.query_object_json(template("users", "short"), {"handle": evil}) is None
    add_user(db, evil)
    found = db.query_object_json(template("users", "short"), {"handle": evil})
    assert found["handle"] == evil
    assert db.query_value("SELECT count(*) FROM public.users WHERE handle = 'bayko'") == 1


def test_handle_is_unique(db):
    with pytest.raises(psycopg.errors.UniqueViolation):
        add_user(db, "bayko")


def test_cognito_user_id_is_unique_but_may_be_missing(db):
    sub = f"sub-{uuid.uuid4()}"
    add_user(db, cognito_user_id=sub)
    with pytest.raises(psycopg.errors.UniqueViolation):
        add_user(db, cognito_user_id=sub)
    add_user(db, cognito_user_id=None)
    add_user(db, cognito_user_id=None)


def test_lookup_templates(db):
    by_handle = {u["handle"]: u for u in db.query_array_json(template("users", "list"))}
    sub = by_handle["bayko"]["cognito_user_id"]
    assert sub, "the seeded users are linked to the Cognito pool"
    assert db.query_object_json(template("users", "by_cognito_user_id"),
                                {"cognito_user_id": sub})["handle"] == "bayko"
    uuids = [by_handle["andrewbrown"]["uuid"], by_handle["londo"]["uuid"]]
    found = db.query_array_json(template("users", "by_uuids"), {"uuids": uuids})
    assert sorted(u["handle"] for u in found) == ["andrewbrown", "londo"]


def test_unreachable_server_is_database_unavailable(settings):
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/cruddur"
    db = Db(settings.with_(connection_url=closed, db_timeout_seconds=0.5))
    try:
        with pytest.raises(DatabaseUnavailable):
            db.query_value("SELECT 1")
        assert db.ping() is False
    finally:
        db.close()


def test_pool_is_bounded(settings):
    db = Db(settings.with_(db_pool_min=1, db_pool_max=2, db_timeout_seconds=0.5))
    try:
        assert db.pool.max_size == 2
        with db.pool.connection(), db.pool.connection():
            # both connections are taken: a third caller waits for the timeout, then gives up
            with pytest.raises(DatabaseUnavailable):
                db.query_value("SELECT 1")
        assert db.query_value("SELECT 1") == 1
    finally:
        db.close()


def test_a_connection_the_server_ended_is_replaced_before_it_is_used(settings):
    """A pooled connection whose backend PostgreSQL terminated (as on a restart) is thrown away
    when the pool hands it out, so the next statement runs on a new one instead of failing."""
    import time

    db = Db(settings.with_(db_pool_min=1, db_pool_max=1))
    try:
        ended = db.query_value("SELECT pg_backend_pid()")
        with psycopg.connect(settings.connection_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", [ended]).fetchone()[0]
            for _ in range(200):  # until the backend has gone (and said so to its client)
                if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [ended]).fetchone():
                    break
                time.sleep(0.05)
        assert db.query_value("SELECT 1") == 1
        assert db.query_value("SELECT pg_backend_pid()") != ended
    finally:
        db.close()


def test_ping(db):
    assert db.ping() is True


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0,
                    reason="only as root does PostgreSQL run as another user")
def test_postgres_starts_from_a_checkout_other_users_cannot_enter(tmp_path):
    # A clone in a private temporary folder (mode 0700, as `mktemp -d` makes it): PostgreSQL's
    # system user must still reach the wheel's programs and the data.
    package = postgres_bin_path().parent.parent
    mode = package.stat().st_mode
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    pg = LocalPostgres(private / "pgdata", free_port())
    package.chmod(0o700)
    try:
        pg.start()
        with psycopg.connect(pg.url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pg.stop()
        package.chmod(stat.S_IMODE(mode) | 0o055)  # as start() leaves it, even if it failed




def test_a_database_started_over_seeds_the_same_users(settings):
    """The seed users' uuids are fixed: the seeded conversation in DynamoDB is keyed by them, so a
    database made again (bin/db/setup --reset, a new .local/pgdata) still has its users'
    conversations. (With gen_random_uuid() they came back as strangers to the table.)"""
    from lib import db as pg

    again = settings.connection_url.rsplit("/", 1)[0] + f"/seeded_again_{uuid.uuid4().hex[:8]}"
    handles = "SELECT json_object_agg(handle, uuid) FROM public.users WHERE handle = ANY(%(h)s)"
    seeded = {"h": ["andrewbrown", "bayko", "londo"]}
    pg.setup_database(again)
    try:
        first, second = Db(settings), Db(settings.with_(connection_url=again))
        try:
            assert second.query_value(handles, seeded) == first.query_value(handles, seeded)
            assert len(second.query_value(handles, seeded)) == 3
        finally:
            first.close()
            second.close()
    finally:
        pg.drop_database(again)
