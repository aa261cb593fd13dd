"""Blocking a user end to end through HTTP against gunicorn over the local stack: the block routes
as the contract gives them, sends refused both ways by handle and into the conversation (nothing
stored), and a block (and an unblock) that holds on every process of a server from a second after its 200, each
process having remembered the blocks it read before (lib/blocks.py BlockCache)."""
from __future__ import annotations

import time

import pytest

from devstack import Stack, free_port, start_api
from tests.http_api import conforms, error, get, messages, request, send


def put_block(api, user, other):
    return request(api, "PUT", f"/api/blocks/@{other.handle}", user)


def test_block_list_and_unblock_as_the_contract_gives_them(api, users):
    a, b, c = users.make("ba"), users.make("bb"), users.make("bc")
    first = put_block(api, a, b)
    assert first.status_code == 200
    conforms(first.json(), "Block")
    assert (first.json()["handle"], first.json()["display_name"]) == (b.handle, b.display_name)
    assert put_block(api, a, b).json() == first.json()
    put_block(api, a, c)
    listed = get(api, "/api/blocks", a).json()
    conforms(listed, "Block", array=True)
    assert [x["handle"] for x in listed] == [c.handle, b.handle]
    gone = request(api, "DELETE", f"/api/blocks/@{b.handle.upper()}", a)
    assert (gone.status_code, gone.json()) == (200, {"handle": b.handle})
    assert request(api, "DELETE", f"/api/blocks/@{b.handle}", a).json() == {"handle": b.handle}
    assert [x["handle"] for x in get(api, "/api/blocks", a).json()] == [c.handle]
    error(request(api, "PUT", "/api/blocks/@nobody-at-all", a), 404, "user_not_found")
    error(request(api, "PUT", f"/api/blocks/@{a.handle}", a), 422, "block_self")
    assert request(api, "GET", "/api/blocks").status_code == 401


def test_while_blocked_sends_are_refused_both_ways_and_nothing_is_stored(api, users):
    a, b = users.make("bd"), users.make("be")
    group = send(api, a, "before the block", to=b)["message_group_uuid"]
    put_block(api, a, b)
    for body, code in (({"handle": a.handle}, "recipient_unavailable"),
                       ({"message_group_uuid": group}, "recipient_unavailable")):
        answer = request(api, "POST", "/api/messages", b, json={"message": "let me in", **body},
                         headers={"Idempotency-Key": f"try-{code}-{len(body)}-{group[:8]}"})
        error(answer, 403, code)
    for body in ({"handle": b.handle}, {"message_group_uuid": group}):
        error(request(api, "POST", "/api/messages", a, json={"message": "mine", **body}), 403, "recipient_blocked")
    assert [m["message"] for m in messages(api, a, group)] == ["before the block"]
    assert [m["message"] for m in messages(api, b, group)] == ["before the block"]  # both keep the history
    request(api, "DELETE", f"/api/blocks/@{b.handle}", a)
    send(api, b, "after the block", group=group)
    assert [m["message"] for m in messages(api, a, group)] == ["before the block", "after the block"]


@pytest.fixture(scope="module")
def workers(settings):
    """The API with several worker processes, each with its own caches."""
    stack = Stack()
    try:
        url = start_api(settings, stack, free_port(), workers=3, env={"CURSOR_SECRET": "test-cursor-secret"})
        yield type("Api", (), {"url": url, "session": __import__("requests").Session()})()
    finally:
        stack.stop()


def test_a_block_holds_on_every_process_from_one_second_after_its_answer(workers, users):
    """The contract's bound: "from one second after the PUT's 200" (a notice takes milliseconds to
    reach every process; a process whose listening was kept from running for half a second asks
    PostgreSQL instead of its memory)."""
    a, b = users.make("bf"), users.make("bg")
    group = send(workers, a, "hello", to=b)["message_group_uuid"]
    for _ in range(12):  # every worker knows the conversation and the users (their caches warm)
        send(workers, b, "warm", group=group)
    assert put_block(workers, a, b).status_code == 200
    time.sleep(1.0)  # the contract's second
    for attempt in range(24):  # spread over the workers by the kernel: none lets one through
        error(request(workers, "POST", "/api/messages", b, json={"message": f"x{attempt}", "message_group_uuid": group}),
              403, "recipient_unavailable")
    assert not any(m["message"].startswith("x") for m in messages(workers, a, group))
    request(workers, "DELETE", f"/api/blocks/@{b.handle}", a)
    time.sleep(1.0)
    for attempt in range(24):  # and the unblock likewise, on every worker
        send(workers, b, f"y{attempt}", group=group)


def test_a_block_holds_in_harsh_mode_too(api, users, harsh):
    """A lagging index, lost responses retried by the SDK, throttling, duplicated stream records:
    the block is asked of PostgreSQL before anything is written to the table, so none of it lets a
    send through, and the unblock lets sends in again."""
    harsh(gsi_lag_ms=1500)
    a, b = users.make("bh"), users.make("bi")
    group = send(api, a, "hello", to=b)["message_group_uuid"]
    put_block(api, b, a)
    for body in ({"handle": b.handle}, {"message_group_uuid": group}):
        error(request(api, "POST", "/api/messages", a, json={"message": "in harsh times", **body},
                      headers={"Idempotency-Key": f"harsh-{len(body)}-{group[:8]}"}), 403, "recipient_unavailable")
    request(api, "DELETE", f"/api/blocks/@{a.handle}", b)
    send(api, a, "let in", group=group)
    assert [m["message"] for m in messages(api, b, group)] == ["hello", "let in"]
