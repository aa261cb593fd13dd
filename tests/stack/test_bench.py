"""./bin/bench --quick runs end to end and writes every figure issue 5 asks for.

No timing is asserted: the figures depend on the machine. Only the shape of the file is checked
(and that the counted calls are counts)."""
from __future__ import annotations

import json
import math
import numbers
import subprocess

import pytest

ROW_FIELDS = {"pattern", "concurrency", "api_rps", "store_rps", "ratio", "p50_ms", "p99_ms",
              "ddb_calls_per_request", "pg_queries_per_request", "jwks_fetches_per_request",
              "server_cpu_ms", "boto3_cpu_ms"}


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@pytest.mark.slow
def test_quick_run_writes_every_field(repo_root, tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([str(repo_root / "bin" / "bench"), "--quick", "--out", str(out)],
                         cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "pattern" in run.stdout and "targets:" in run.stdout  # the table
    result = json.loads(out.read_text())

    machine = result["machine"]
    assert isinstance(machine, dict)
    assert is_number(machine["cpu_count"]) and machine["python"] and machine["platform"]

    rows = result["rows"]
    assert {(r["pattern"], r["concurrency"]) for r in rows} == {
        (p, c) for p in "ABCDU" for c in (1, 8)}  # U: the unread summary (issue 37)
    for row in rows:
        assert ROW_FIELDS <= set(row), row
        assert is_number(row["cpu_over_boto3_ms"])  # a difference: may be negative
        for field in ROW_FIELDS - {"pattern"}:
            assert is_number(row[field]), (field, row)
            assert row[field] >= 0, (field, row)
        assert row["api_rps"] > 0 and row["store_rps"] > 0
        # every pattern costs at least one DynamoDB call, and the counters are whole-run deltas
        assert row["ddb_calls_per_request"] >= 1
        # the same store call through a Flask route that makes only it (bench/floor_app.py),
        # measured in the same slices: the bound of API/store
        assert row["floor_rps"] > 0, row
        # the ratio is of the unrounded rates, the rates are shown to 0.1/s: at the quick run's few
        # requests per second that rounding alone moves their quotient by up to this much
        rounding = 0.05 * (1 + row["floor_ratio"]) / row["store_rps"]
        assert row["floor_ratio"] == pytest.approx(row["floor_rps"] / row["store_rps"],
                                                   abs=0.001 + rounding), row
    # the unread summary reads all of the small user's rows in one Query, and nothing else
    assert all(row["ddb_calls_per_request"] == 1 for row in rows if row["pattern"] == "U")
    # and the floor app's calls are the store's: none refused
    assert all(run["floor"]["errors"] == 0 and run["floor"]["requests"] > 0 for run in result["runs"])

    activities = result["activities"]
    assert {(a["route"], a["concurrency"]) for a in activities} == {
        (r, c) for r in ("home", "user") for c in (1, 8)}
    for row in activities:
        assert row["errors"] == 0 and row["rps"] > 0, row
        assert is_number(row["p50_ms"]) and is_number(row["p99_ms"])
        # a page of cruds with their replies is one query (a user's: one more only when empty)
        assert row["pg_queries_per_request"] == 1, row

    stream = result["stream"]
    assert stream["messages"] == 100 and stream["groups"] == 1
    # a warm container: the group's index Query, then a put of each participant's new row and
    # the delete of the old one, whatever the batch holds
    assert stream["ddb_calls_by_operation"] == {"Query": 1, "PutItem": 2, "DeleteItem": 2}
    # that group's header and its index; the record is one the rows are already at (a replay),
    # so each participant's rows are read from the table too (docs/stream.md)
    assert stream["first_meeting_ddb_calls"] == 4
    # the burst was applied: no failed record, both group rows on the newest message
    assert stream["failures"] == 0 and stream["rows_at_newest"] == 2
    lag = result["stream_lag"]
    assert lag["fresh"]["messages"] == lag["restarted"]["messages"] == 60
    assert lag["restarted"]["backlog_messages"] == 300
    assert lag["restarted"]["backlog_records"] >= 300  # the backlog's messages, at least
    for run in lag.values():
        assert 0 <= run["lag_p50_s"] <= run["lag_p99_s"] <= run["lag_max_s"]

    live = result["live"]  # issue 27
    for where in ("same process", "across processes"):
        figures = live["latency"][where]
        assert figures["messages"] == 20 and 0 < figures["p50_ms"] <= figures["p99_ms"]
    end = live["end_to_end"]  # issue 37: one message's events, end to end
    assert end["messages"] == 20 and set(end["cpu_ms"]) == {
        "the stream worker (both Lambdas)", "delivery (the other process)"}
    assert all(is_number(ms) and ms >= 0 for ms in end["cpu_ms"].values())
    assert is_number(end["delivery_pg_queries_per_message"])
    idle = live["idle"]
    assert idle["streams"] == 200 and idle["b_with"]["errors"] == idle["b_without"]["errors"] == 0
    assert is_number(idle["memory_per_stream_kib"]) and is_number(idle["b_p99_ratio"])
    # an idle stream makes no call at all: no DynamoDB read, no PostgreSQL query
    assert idle["idle_dynamodb_calls_per_user_hour"] == idle["idle_pg_queries_per_user_hour"] == 0
    hostile = live["hostile"]  # issue 33: one user at the cap on every worker, another refused
    assert hostile["holder_streams_open"] == 5 * hostile["workers"]
    assert hostile["attacker_attempts"] == 100 and hostile["attacker_streams_open"] <= 5 * hostile["workers"]
    assert sum(hostile["attacker_refused"].values()) >= 100 - 5 * hostile["workers"]
    assert set(hostile["attacker_refused"]) <= {"429 too_many_tickets", "429 stream"}
    assert hostile["b_beside"]["errors"] == hostile["b_alone"]["errors"] == 0
    assert hostile["health_checks"] > 0 and hostile["health_checks_ok"] == hostile["health_checks"]
    assert is_number(hostile["b_p99_ratio"])

    # issue 37: the newer operations through the API, with their CPU and calls per request
    operations = {o["operation"]: o for o in result["operations"]}
    assert set(operations) == {"edit a message (PATCH)", "delete a message (DELETE)",
                               "buy a live-event ticket (POST /api/events/ticket)"}
    for operation in operations.values():
        assert operation["errors"] == 0 and operation["requests"] > 0 and is_number(operation["server_cpu_ms"])
    assert operations["edit a message (PATCH)"]["ddb_calls_per_request"] == 2  # GetItem, UpdateItem
    assert operations["buy a live-event ticket (POST /api/events/ticket)"]["ddb_calls_per_request"] == 0

    # capacity units by DynamoDB's rules, from the items the calls really wrote and read: the
    # design's costs (issue 14), the same on every machine
    capacity = {o["operation"]: o for o in result["capacity"]["operations"]}
    assert "$0.625 per million write request units" in result["capacity"]["price"]
    assert capacity["D: message into a conversation"]["write_total"] == 9
    assert capacity["D: message into a conversation"]["write_total_before"] == 13
    assert capacity["C: first message to a user"]["write_total"] == 6
    assert capacity["D: with an Idempotency-Key"]["write_total"] == 10
    for name in ("A: a page of 20 messages", "B: a page of 20 conversations",
                 "unread summary (23 conversations)"):
        assert capacity[name]["rcu"] == 1 and capacity[name]["write_total"] == 0
    # marking read: one update of the caller's row (and DynamoDB's write of its index copy)
    assert (capacity["marking a conversation read"]["wcu"],
            capacity["marking a conversation read"]["calls"].get("UpdateItem")) == (1, 1)
    # issue 36: an edit costs at most what a message costs (its item, and the two rows showing it)
    edit = capacity["edit of a conversation's last message"]
    assert edit["write_total"] <= capacity["D: message into a conversation"]["write_total"]
    assert edit["api"]["calls"].get("UpdateItem") == 1 and edit["stream"]["calls"].get("UpdateItem") == 2
    # a deletion too: its item and key's record in the API; the rows' text and count in the stream
    deletion = capacity["deletion of a last message, unread, keyed"]
    assert deletion["write_total"] <= capacity["D: message into a conversation"]["write_total"]
    assert deletion["api"]["calls"].get("UpdateItem") == 2 and deletion["stream"]["calls"].get("UpdateItem") == 2
    assert capacity["block check added to a send"]["calls"] == {}, "no DynamoDB call"
    for operation in capacity.values():
        if operation["operation"] == "block check added to a send":
            continue  # costs nothing: no price
        assert is_number(operation["store_reported"]) and operation["dollars_per_million"] > 0

    seed = result["seed"]
    assert seed["items"] == 1000
    # in full batches of 25, and nothing but batches (not item by item)
    assert seed["ddb_calls"] == math.ceil(seed["items"] / 25)
    assert seed["operations"] == ["BatchWriteItem"]

    growth = result["growth"]
    for pattern in ("A", "B"):
        case = growth[pattern]
        assert is_number(case["small"]["p50_ms"]) and is_number(case["large"]["p50_ms"])
        assert is_number(case["ratio"])

    targets = result["targets"]
    assert targets and all({"name", "target", "value", "met"} <= set(t) for t in targets)
    # every target is judged, but the bootcamp comparison, which needs --bootcamp
    old = [t for t in targets if "bootcamp" in t["name"]]
    assert len(old) == 8 and all(t["met"] is None for t in old)
    assert all(t["met"] in (True, False) for t in targets if t not in old)


def test_the_scale_figures_are_measured_through_the_event_log(settings):
    """`./bin/bench --scale` (bench/scale.py, docs/scale.md): appends with racing appenders and
    NOTIFY to listening connections, through the project's own event_log.append. Shape only,
    never timings."""
    from bench import scale

    figures = scale.measure(settings.connection_url, seconds=0.3)
    assert [row["appenders"] for row in figures["appends"]] == list(scale.APPENDERS)
    assert all(row["events_per_s"] > 0 and row["append_p50_ms"] <= row["append_p99_ms"] for row in figures["appends"])
    assert [row["listeners"] for row in figures["fanout"]] == list(scale.LISTENERS)
    for row in figures["fanout"]:
        assert row["appends_per_s"] > 0 and row["notifications"] > 0
