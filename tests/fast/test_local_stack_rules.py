"""The local stack's own rules, which need none of its servers: moto's corrections fit this moto
and each says why; harsh mode's knobs; how the stream worker hands records to the stream Lambda
(which record failed, checkpoints, the mapping's filter); the pool's statement watchdog."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from devstack import stream_mapping
from devstack.stream_worker import SHARD_END, Checkpoints, failed_position
from domain import times
from lib.conversations import layout

START = datetime(2030, 1, 1, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    return times.iso(START + timedelta(seconds=seconds))


def person(handle: str) -> dict[str, str]:
    return {"uuid": str(uuid.uuid4()), "display_name": handle.title(), "handle": handle}


def record_of(item: dict, event_name: str = "INSERT") -> dict:
    """A stream record as the function receives it, of a plain item."""
    image = {k: {"S": v} for k, v in item.items() if isinstance(v, str)}
    return {"eventName": event_name, "eventSource": "aws:dynamodb",
            "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "NewImage": image,
                         "SequenceNumber": "1"}}



def test_the_corrections_fit_this_moto_and_fail_loudly_on_one_that_changed():
    """What devstack/moto_corrections rely on in moto is checked at start-up: an upgrade that
    renames an argument they read stops the local stack with a message naming it, instead of
    silently answering differently."""

    from devstack import moto_corrections
    from devstack.moto_corrections import dynamodb

    moto_corrections.check_moto()  # this moto fits
    real = dynamodb.MOTO_QUERY_SIGNATURE
    renamed = real.replace(parameters=[
        p.replace(name="start_key") if p.name == "exclusive_start_key" else p
        for p in real.parameters.values()])
    with pytest.raises(RuntimeError, match="Table.query argument 'exclusive_start_key'"):
        moto_corrections.check_moto(renamed)


def test_harsh_knobs_come_from_the_environment_and_refuse_nonsense():
    from devstack import harsh

    assert not harsh.from_env({}).on
    everything = harsh.from_env({"LOCAL_HARSH": "1"})
    assert everything == harsh.Harshness(**harsh.DEFAULTS)
    one = harsh.from_env({"LOCAL_HARSH_GSI_LAG_MS": "250"})
    assert one == harsh.Harshness(gsi_lag_ms=250)
    assert harsh.from_env(harsh.environment(everything)) == everything
    for bad in ({"throttle": 2}, {"lost_responses": -0.1}, {"nope": 1}, {"throttle": "nan"},
                {"gsi_lag_ms": "inf"}):
        with pytest.raises(ValueError):
            harsh.Harshness().changed(bad)
    # from the environment: one line naming the variable (./bin/dev shows it and stops)
    from lib.config import ConfigError
    for env, says in (({"LOCAL_HARSH": "maybe"}, "LOCAL_HARSH must be 1, true or on"),
                      ({"LOCAL_HARSH_THROTTLE": "2"}, "LOCAL_HARSH_THROTTLE must be a probability"),
                      ({"LOCAL_HARSH_GSI_LAG_MS": "soon"}, "LOCAL_HARSH_GSI_LAG_MS must be milliseconds")):
        with pytest.raises(ConfigError, match=says):
            harsh.from_env(env)


def test_each_correction_has_its_service_module_reason_and_moto_version():
    """Issue 34, item 5: one module per service corrected, and every correction listed with its
    reason in one line and the moto version it was measured on."""
    import pkgutil

    from devstack import moto_corrections

    modules = {m.name for m in pkgutil.iter_modules(moto_corrections.__path__)}
    listed = {c.module for c in moto_corrections.CORRECTIONS}
    assert listed == modules, (listed, modules)
    assert [c.number for c in moto_corrections.CORRECTIONS] == list(range(1, len(moto_corrections.CORRECTIONS) + 1))
    for correction in moto_corrections.CORRECTIONS:
        assert correction.reason and "\n" not in correction.reason and correction.measured_on
        assert f"| {correction.number} |" in moto_corrections.__doc__


def test_failed_position_follows_lambda_rules():
    records = [{"dynamodb": {"SequenceNumber": s}} for s in ("11", "12", "13")]
    assert failed_position(records, {"batchItemFailures": []}) is None
    assert failed_position(records, None) is None
    assert failed_position(records, {"batchItemFailures": [{"itemIdentifier": "13"},
                                                           {"itemIdentifier": "12"}]}) == 1
    assert failed_position(records, {"batchItemFailures": [{"itemIdentifier": "99"}]}) == 0
    assert failed_position(records, {"batchItemFailures": [{"itemIdentifier": ""}]}) == 0


def test_checkpoints_are_replaced_atomically_and_forget_recreated_tables(tmp_path):
    path = tmp_path / "nested" / "cp.json"
    old = "arn:aws:dynamodb:us-east-1:123:table/t/stream/2030-01-01T00:00:00"
    new = "arn:aws:dynamodb:us-east-1:123:table/t/stream/2030-01-02T00:00:00"
    other = "arn:aws:dynamodb:us-east-1:123:table/u/stream/2030-01-01T00:00:00"
    cp = Checkpoints(path)
    cp.put(old, "shard-1", "5")
    cp.put(other, "shard-1", "7")
    cp.put(new, "shard-2", SHARD_END)
    cp.forget_older_streams(new)
    assert Checkpoints(path).data == {new: {"shard-2": SHARD_END}, other: {"shard-1": "7"}}
    assert [p.name for p in path.parent.iterdir()] == ["cp.json"]  # no temporary file left


def test_the_mappings_filter_lets_through_only_new_messages():
    """The pattern is the template's own; each kind of item the table holds is tried."""
    patterns = stream_mapping.stream_patterns()
    assert patterns, "the stream mapping has a FilterCriteria"
    a, b = person("ana"), person("bo")
    group = layout.group_uuid_for(a["uuid"], b["uuid"])
    message = layout.message_item(group, a, "hi", at(0))
    assert stream_mapping.delivered(patterns, record_of(message))
    assert not stream_mapping.delivered(patterns, record_of(message, "MODIFY"))
    assert not stream_mapping.delivered(patterns, record_of(message, "REMOVE"))
    no_uuid = {k: v for k, v in message.items() if k != "message_uuid"}
    assert not stream_mapping.delivered(patterns, record_of(no_uuid))
    for other in [*layout.message_rows(a, b, group, "hi", at(0)),
                  layout.header_item(group, [a["uuid"], b["uuid"]], at(0))]:
        assert not stream_mapping.delivered(patterns, record_of(other)), other["pk"]


def test_the_watchdog_is_woken_only_for_a_deadline_sooner_than_its_own(monkeypatch):
    """Statements that all get the same timeout need no wake-up of the watching thread each (it
    looks at them when its own wake-up comes); one whose deadline is sooner than that wake-up
    gets one, and is cut when its deadline passes."""
    import threading
    import time

    from lib.db import Watchdog

    cut = threading.Event()
    monkeypatch.setattr(Watchdog, "_cut", staticmethod(lambda conn: cut.set()))
    watchdog = Watchdog()
    notified = []

    class Counting(threading.Condition):
        def notify(self, n: int = 1) -> None:
            notified.append(n)
            super().notify(n)

    watchdog._changed = Counting()
    far = time.monotonic() + 600
    with watchdog.watching(object(), far):  # starts the thread, which will wake at `far`
        for _ in range(1000):
            if watchdog._wake_at == far:
                break
            time.sleep(0.01)
        assert watchdog._wake_at == far
    for n in range(50):
        with watchdog.watching(object(), far + n):
            pass
    assert notified == []
    with watchdog.watching(object(), time.monotonic() + 0.05):  # sooner: wake up, then cut it
        assert cut.wait(10)
    assert len(notified) == 1
