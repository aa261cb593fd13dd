"""A feed of 100,000 cruds answers its first page as one of 100 does: PostgreSQL reads it along an
index from the top and stops after the page (the plan, not a timing, shows it)."""
from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from lib import db as pg_admin
from lib.sql_files import template

CRUDS = 100_000


@pytest.fixture(scope="module")
def big(settings):
    url = settings.connection_url.rsplit("/", 1)[0] + f"/plan_{uuid.uuid4().hex[:8]}"
    pg_admin.setup_database(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.activities (user_uuid, message, expires_at, created_at) "
            "SELECT (SELECT uuid FROM public.users WHERE handle = 'andrewbrown'), 'crud ' || i, "
            "       now() + interval '7 days', now() - i * interval '1 second' "
            "FROM generate_series(1, %s) AS i", [CRUDS])
        conn.execute("ANALYZE public.activities")
        yield conn
    pg_admin.drop_database(url)


def plan(conn, name: str, **params) -> dict:
    sql = template("activities", name)
    values = {"after_at": "infinity", "after_uuid": "ffffffff-ffff-ffff-ffff-ffffffffffff",
              "limit": 21, **params}
    [[document]] = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", values).fetchall()
    return (document if isinstance(document, list) else json.loads(document))[0]["Plan"]


def nodes(node: dict) -> list[dict]:
    return [node, *(n for child in node.get("Plans", []) for n in nodes(child))]


@pytest.mark.parametrize("name, params", [("home", {}), ("user", {"handle": "andrewbrown"})])
def test_the_first_page_is_read_along_an_index_and_stops_there(big, name, params):
    assert big.execute("SELECT count(*) FROM public.activities").fetchone()[0] >= CRUDS
    every = nodes(plan(big, name, **params))
    shape = [(n["Node Type"], n.get("Index Name") or n.get("Relation Name"), n["Actual Rows"]) for n in every]
    feed = [n for n in every if n.get("Index Name") in ("activities_feed_idx", "activities_user_feed_idx")]
    assert feed, shape
    # the page's 21 rows, not the 100,000: read in index order and stopped, nothing sorted but
    # the page itself, no sequential scan of the table
    assert max(n["Actual Rows"] for n in feed) <= 21, shape
    assert not any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "activities" for n in every), shape
    assert all(n["Actual Rows"] <= 21 for n in every if n["Node Type"] == "Sort"), shape
