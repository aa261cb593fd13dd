"""The benchmark's figures: the targets of issues 5 and 14, the table on stdout and the JSON file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RATIO_TARGET = 0.90
CPU_OVER_BOTO3_MS = 1.0
CPU_OF_BOOTCAMP = 0.25  # this server's CPU per request over the week-5 backend's (--bootcamp; issue 37)
BOOTCAMP_PATTERNS = ("A", "B", "C", "D")  # the week-5 backend has no unread summary (U)
# What the app's own work may add to a request's CPU over bench/floor_app.py's, in ms (issue 37):
# C also finds the recipient by handle (a PostgreSQL lookup the floor app does not make).
CPU_OVER_FLOOR_MS = {"A": 0.15, "B": 0.15, "C": 0.35, "D": 0.15, "U": 0.15}  # U: the unread summary
GROWTH_TARGET = 1.5
SEED_ITEMS_PER_CALL = 25
# a Query of the group's rows, then per participant a put and a delete (plain writes: half the
# capacity of a transaction's)
STREAM_CALLS_PER_GROUP = 5
# DynamoDB capacity, end to end (issue 14)
MESSAGE_WCU = 9
FIRST_MESSAGE_WCU = 6
IDEMPOTENCY_EXTRA_WCU = 1
PAGE_RCU = 1
# Per-request counts are averages over a run; "1 call per request" is met when the average rounds
# to 1 at two decimals (a stray retry in a thousand requests is not a design cost).
PLACES = 2


def _row(rows: list[dict[str, Any]], pattern: str, concurrency: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["pattern"] == pattern and r["concurrency"] == concurrency), None)


def _worst(rows: list[dict[str, Any]], pattern: str, key: str) -> float | None:
    values = [r[key] for r in rows if r["pattern"] == pattern and r[key] is not None]
    return max(values) if values else None


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = result["rows"]
    out: list[dict[str, Any]] = []

    def add(name: str, value: Any, met: bool | None, target: str) -> None:
        out.append({"name": name, "target": target, "value": value, "met": met})

    for row in rows:
        name = f"{row['pattern']} x{row['concurrency']}"
        ratio = row["ratio"]
        add(f"{name} API/store", ratio, None if ratio is None else ratio >= RATIO_TARGET,
            f">= {RATIO_TARGET}")
        over = row.get("cpu_over_boto3_ms")
        add(f"{name} server CPU per request over the bare boto3 call's (ms)",
            {"server": row.get("server_cpu_ms"), "boto3": row.get("boto3_cpu_ms"), "over": over},
            None if over is None else over <= CPU_OVER_BOTO3_MS, f"<= {CPU_OVER_BOTO3_MS}")
        over_floor = row.get("cpu_over_floor_ms")
        limit = CPU_OVER_FLOOR_MS[row["pattern"]]
        add(f"{name} server CPU per request over the floor app's (ms)",
            {"server": row.get("server_cpu_ms"), "floor": row.get("floor_cpu_ms"), "over": over_floor},
            None if over_floor is None else over_floor <= limit, f"<= {limit} (issue 37)")
        if row["pattern"] not in BOOTCAMP_PATTERNS:
            continue
        share = row.get("cpu_of_bootcamp")
        add(f"{name} server CPU per request over the bootcamp backend's",
            {"server": row.get("server_cpu_ms"), "bootcamp": row.get("bootcamp_cpu_ms"), "share": share},
            None if share is None else share <= CPU_OF_BOOTCAMP,
            f"<= {CPU_OF_BOOTCAMP} (measured with --bootcamp)")
    for pattern in ("A", "B"):
        ddb = _worst(rows, pattern, "ddb_calls_per_request")
        pg = _worst(rows, pattern, "pg_queries_per_request")
        jwks = _worst(rows, pattern, "jwks_fetches_per_request")
        value = {"ddb": ddb, "pg": pg, "jwks": jwks}
        # PostgreSQL: none per request. The server re-reads a caller's user once its cache entry
        # is USER_CACHE_SECONDS old, a cost per caller and minute, not per request: queries up to
        # that allowance are not counted against the target (and are shown).
        runs = [r for r in result.get("runs", []) if r["pattern"] == pattern]
        pg_queries = sum(r["server_counters"].get("pg_queries", 0) for r in runs)
        allowed = sum(r.get("user_cache_refreshes_allowed", 0) for r in runs)
        value["pg_queries_in_runs"] = pg_queries
        value["user_cache_refreshes_allowed"] = allowed
        met = None if None in (ddb, pg, jwks) else (
            round(ddb, PLACES) == 1 and round(jwks, PLACES) == 0
            and (round(pg, PLACES) == 0 or pg_queries <= allowed))
        add(f"{pattern} calls per request", value, met,
            "1 DynamoDB, 0 PostgreSQL (beyond re-reads as the user and name caches expire), 0 JWKS")
    for pattern, limit, text in (("C", 1, "1 DynamoDB call"), ("D", 2, "<= 2 DynamoDB calls")):
        ddb = _worst(rows, pattern, "ddb_calls_per_request")
        met = None if ddb is None else (
            round(ddb, PLACES) == 1 if pattern == "C" else round(ddb, PLACES) <= limit)
        add(f"{pattern} DynamoDB calls per request", ddb, met, text)
    stream = result["stream"]
    per_group = (stream["ddb_calls"] / stream["groups"]
                 if stream.get("ddb_calls") is not None and stream.get("groups") else None)
    add("stream calls per group per batch", per_group,
        None if per_group is None else per_group <= STREAM_CALLS_PER_GROUP,
        f"<= {STREAM_CALLS_PER_GROUP} for {stream.get('messages')} messages")
    lag = result.get("stream_lag") or {}
    live, replay = (lag.get("fresh") or {}).get("records_per_s"), (lag.get("restarted") or {}).get("replay_records_per_s")
    add("stream worker: a backlog replayed at least at the live pace (records/s)",
        {"live": live, "replay": replay}, None if None in (live, replay) else replay >= live,
        ">= the live pace (issue 26)")
    live = result.get("live") or {}
    for where, figures in (live.get("latency") or {}).items():
        add(f"live events: post-to-event p99, {where} (ms)", figures["p99_ms"],
            figures["p99_ms"] < 1000, "< 1000 (issue 27: within a second)")
    idle = live.get("idle")
    if idle:
        add(f"live events: pattern B p99 beside {idle['streams']} idle streams / without",
            idle["b_p99_ratio"], idle["b_p99_ratio"] <= 1.2, "<= 1.2 (issue 27)")
        add("live events: an idle connected user's DynamoDB calls per hour",
            idle["idle_dynamodb_calls_per_user_hour"], idle["idle_dynamodb_calls_per_user_hour"] < 720,
            "< 720 (0.2 read units a second, at 1 unit a call)")
    hostile = live.get("hostile")
    if hostile:
        add("live events: pattern B p99 beside one user at the cap on every worker and another's "
            f"{hostile['attacker_attempts']} attempts / alone", hostile["b_p99_ratio"],
            None if hostile["b_p99_ratio"] is None else hostile["b_p99_ratio"] <= 1.2, "<= 1.2 (issue 33)")
        add("live events: health checks answered during those attempts",
            f"{hostile['health_checks_ok']}/{hostile['health_checks']}",
            hostile["health_checks"] > 0 and hostile["health_checks_ok"] == hostile["health_checks"], "all")
    operations = {o["operation"]: o for o in result.get("capacity", {}).get("operations", [])}
    for name, limit in (("D: message into a conversation", MESSAGE_WCU),
                        ("C: message to a user, conversation exists", MESSAGE_WCU),
                        ("C: first message to a user", FIRST_MESSAGE_WCU)):
        value = operations.get(name, {}).get("write_total")
        add(f"WCU end to end, {name}", value, None if value is None else value <= limit, f"<= {limit}")
    keyed, plain = (operations.get(n, {}).get("write_total") for n in (
        "D: with an Idempotency-Key", "D: message into a conversation"))
    extra = None if None in (keyed, plain) else keyed - plain  # type: ignore[operator]
    add("WCU an Idempotency-Key adds", extra, None if extra is None else extra <= IDEMPOTENCY_EXTRA_WCU,
        f"<= {IDEMPOTENCY_EXTRA_WCU}")
    for name in ("edit of a conversation's last message", "deletion of a last message, unread, keyed"):
        value = operations.get(name, {}).get("write_total")
        add(f"WCU end to end, {name}", value, None if value is None else value <= MESSAGE_WCU,
            f"<= {MESSAGE_WCU} (what a message costs: issue 36)")
    checked = operations.get("block check added to a send", {}).get("calls")
    add("DynamoDB calls a block check adds to a send", None if checked is None else sum(checked.values()),
        None if checked is None else not checked, "0 (the process's cache, kept current by NOTIFY)")
    marked = operations.get("marking a conversation read", {}).get("wcu")
    add("table WCU to mark a conversation read", marked, None if marked is None else marked <= 1,
        "<= 1 (one write, of the caller's row)")
    for name in ("A: a page of 20 messages", "B: a page of 20 conversations"):
        value = operations.get(name, {}).get("rcu")
        add(f"RCU, {name}", value, None if value is None else value <= PAGE_RCU, f"<= {PAGE_RCU}")
    seed = result["seed"]
    items_per_call = seed["items"] / seed["ddb_calls"] if seed.get("ddb_calls") else None
    add("seed items per call", items_per_call,
        None if items_per_call is None else items_per_call >= SEED_ITEMS_PER_CALL,
        f">= {SEED_ITEMS_PER_CALL} (at most 1 call per 25 items)")
    for pattern in ("A", "B"):
        ratio = result["growth"].get(pattern, {}).get("ratio")
        add(f"{pattern} first-page latency large/small", ratio,
            None if ratio is None else ratio <= GROWTH_TARGET, f"<= {GROWTH_TARGET}")
    return out


def _num(value: Any, places: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{places}f}"
    return str(value)


def table(result: dict[str, Any]) -> str:
    lines = []
    machine = result["machine"]
    lines.append(f"machine: {machine['cpu_count']} CPUs, Python {machine['python']}, "
                 f"{machine['platform']}; server {machine['server']}; store {machine['store']}; "
                 f"mode {machine['mode']}")
    # "floor": floor app / store, for a Flask route that only makes the same store call
    # (bench/floor_app.py): the most a Flask API under gunicorn reaches on this machine
    # CPU per request: the API's, the floor app's, the bare boto3 call's, and the API's over each
    header = ("pattern", "conc", "api rps", "store rps", "ratio", "floor", "p50 ms", "p99 ms",
              "ddb/req", "pg/req", "jwks/req", "cpu ms", "floor ms", "boto3 ms", "+floor", "+boto3")
    widths = (7, 4, 8, 9, 5, 7, 7, 7, 7, 6, 8, 6, 8, 8, 6, 6)
    if machine.get("bootcamp"):  # the week-5 backend beside it: its rps, CPU ms and our share
        header += ("week5 rps", "week5 cpu", "share")
        widths += (9, 9, 5)
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for r in result["rows"]:
        cells = (r["pattern"], r["concurrency"], _num(r["api_rps"]), _num(r["store_rps"]),
                 _num(r["ratio"], 2), _num(r.get("floor_ratio"), 2), _num(r["p50_ms"]), _num(r["p99_ms"]),
                 _num(r["ddb_calls_per_request"], 2), _num(r["pg_queries_per_request"], 2),
                 _num(r["jwks_fetches_per_request"], 2), _num(r.get("server_cpu_ms"), 2),
                 _num(r.get("floor_cpu_ms"), 2), _num(r.get("boto3_cpu_ms"), 2),
                 _num(r.get("cpu_over_floor_ms"), 2), _num(r.get("cpu_over_boto3_ms"), 2))
        if machine.get("bootcamp"):
            cells += (_num(r.get("bootcamp_rps")), _num(r.get("bootcamp_cpu_ms"), 2),
                      _num(r.get("cpu_of_bootcamp"), 2))
        lines.append("  ".join(str(c).rjust(w) for c, w in zip(cells, widths)))
    for a in result.get("activities", []):
        lines.append(f"activities {a['route']:<4} (GET {a['path']}) x{a['concurrency']}: "
                     f"{_num(a['rps'])} req/s, p50 {_num(a['p50_ms'])} ms, p99 {_num(a['p99_ms'])} ms, "
                     f"{_num(a['pg_queries_per_request'], 2)} PostgreSQL queries per request")
    for o in result.get("operations", []):
        lines.append(f"operation: {o['operation']}: {o['requests']} requests, p50 {_num(o['p50_ms'])} ms, "
                     f"p99 {_num(o['p99_ms'])} ms, server CPU {_num(o['server_cpu_ms'], 2)} ms, "
                     f"{_num(o['ddb_calls_per_request'], 2)} DynamoDB calls and "
                     f"{_num(o['pg_queries_per_request'], 2)} PostgreSQL queries per request")
    first = result.get("c_first")
    if first:
        lines.append(f"C, first message of a pair (conversation created), concurrency 1: "
                     f"{first['requests']} requests, p50 {_num(first['p50_ms'])} ms, "
                     f"{_num(first['ddb_calls_per_request'], 2)} DynamoDB calls and "
                     f"{_num(first['pg_queries_per_request'], 2)} PostgreSQL queries per request")
    s = result["stream"]
    lines.append(f"stream Lambda: {s['messages']} messages into {s['groups']} group -> "
                 f"{s['ddb_calls']} DynamoDB calls {s.get('ddb_calls_by_operation', '')} "
                 f"(the container's first batch of the group: {s.get('first_meeting_ddb_calls')}, "
                 f"its participants read once, and, the rows being at that message already, each "
                 f"one's rows read from the table)")
    lag = result.get("stream_lag")
    if lag:
        fresh, again = lag["fresh"], lag["restarted"]
        lines.append(f"stream worker lag, message written -> both rows current ({fresh['groups']} "
                     f"conversations, burst of {fresh['messages']}): fresh stack p50 "
                     f"{_num(fresh['lag_p50_s'], 2)} s, p99 {_num(fresh['lag_p99_s'], 2)} s "
                     f"({_num(fresh['records_per_s'])} records/s); restarted with a backlog of "
                     f"{again['backlog_messages']} messages ({again['backlog_records']} records, "
                     f"replayed in {_num(again['backlog_replayed_s'], 2)} s, "
                     f"{_num(again['replay_records_per_s'])} records/s): p50 "
                     f"{_num(again['lag_p50_s'], 2)} s, p99 {_num(again['lag_p99_s'], 2)} s")
    live = result.get("live")
    if live:
        latency = ", ".join(f"{where} p50 {_num(f['p50_ms'])} ms, p99 {_num(f['p99_ms'])} ms"
                            for where, f in live["latency"].items())
        idle = live["idle"]
        lines.append(f"live events, post -> event ({next(iter(live['latency'].values()))['messages']} "
                     f"messages): {latency}")
        end = live.get("end_to_end")
        if end:
            cpu = ", ".join(f"{where} {_num(ms, 2)} ms" for where, ms in end["cpu_ms"].items())
            lines.append(f"live events, CPU of one message's events end to end: {cpu}; "
                         f"{_num(end['delivery_pg_queries_per_message'], 2)} PostgreSQL queries per "
                         f"message to deliver its events")
        lines.append(f"live events, {idle['streams']} idle streams on one worker: pattern B p99 "
                     f"{_num(idle['b_without']['p99_ms'], 2)} ms without, {_num(idle['b_with']['p99_ms'], 2)} "
                     f"ms with (x{_num(idle['b_p99_ratio'], 2)}); {_num(idle['memory_per_stream_kib'])} KiB "
                     f"per stream; an idle connected user-hour: {_num(idle['idle_dynamodb_calls_per_user_hour'], 2)} "
                     f"DynamoDB calls (read units: at most as many), {_num(idle['idle_pg_queries_per_user_hour'], 2)} "
                     f"PostgreSQL queries, {idle['idle_pings_per_user_hour']} pings")
        hostile = live.get("hostile")
        if hostile:
            lines.append(f"live events, one user at the cap ({hostile['holder_streams_open']} streams on "
                         f"{hostile['workers']} workers) and another's {hostile['attacker_attempts']} attempts "
                         f"({hostile['attacker_streams_open']} opened, refused: {hostile['attacker_refused']}): "
                         f"pattern B p99 {_num(hostile['b_alone']['p99_ms'], 2)} ms alone, "
                         f"{_num(hostile['b_beside']['p99_ms'], 2)} ms beside (x{_num(hostile['b_p99_ratio'], 2)}); "
                         f"health checks {hostile['health_checks_ok']}/{hostile['health_checks']} answered")
    cap = result.get("capacity")
    if cap:
        lines.append(f"DynamoDB capacity per operation, end to end (API + stream Lambda); {cap['price']}:")
        lines.append(f"  {'operation':<44} {'WCU':>5} {'GSI':>5} {'writes':>6} {'before':>6} "
                     f"{'RCU':>5} {'store says':>10} {'$/million':>9}  calls")
        for o in cap["operations"]:
            calls = ", ".join(f"{name} {_num(count, 1)}" for name, count in o["calls"].items()) or "none"
            lines.append(f"  {o['operation']:<44} {_num(o['wcu'], 1):>5} {_num(o['index_wcu'], 1):>5} "
                         f"{_num(o['write_total'], 1):>6} {_num(o.get('write_total_before'), 1):>6} "
                         f"{_num(o['rcu'], 1):>5} {_num(o['store_reported'], 1):>10} "
                         f"{_num(o['dollars_per_million'], 3):>9}  {calls}")
    seed = result["seed"]
    lines.append(f"seed: {seed['items']} messages -> {seed['ddb_calls']} DynamoDB calls "
                 f"(data set: {seed.get('dataset_items')} items in {seed.get('dataset_calls')} calls)")
    for pattern, unit in (("A", "messages"), ("B", "groups")):
        g = result["growth"].get(pattern)
        if g:
            d = g.get("default_page", {})
            lines.append(f"growth {pattern}: first page (limit {result['growth'].get('limit')}) p50 "
                         f"{_num(g['small']['p50_ms'], 2)} ms with {g['small'][unit]} {unit}, "
                         f"{_num(g['large']['p50_ms'], 2)} ms with {g['large'][unit]} -> "
                         f"x{_num(g['ratio'], 2)}; default page: {_num(d.get('small_p50_ms'), 2)} vs "
                         f"{_num(d.get('large_p50_ms'), 2)} ms -> x{_num(d.get('ratio'), 2)}")
    lines.append("targets:")
    for t in result.get("targets", []):
        state = {True: "met   ", False: "MISSED", None: "n/a   "}[t["met"]]
        value = t["value"]
        if isinstance(value, float):
            value = f"{value:.3f}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {_num(v, 3)}" for k, v in value.items())
        elif value is None:
            value = "-"
        lines.append(f"  {state} {t['name']}: {value} (target {t['target']})")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
