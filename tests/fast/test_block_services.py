"""Blocking a user (../shared/CONTRACT.md, "Blocking a user"), over the in-memory twins: the block
routes' services, and the rule every send obeys while either participant blocks the other."""
from __future__ import annotations

import threading

import pytest

from domain.errors import InvalidInput, NotFound, NotPermitted
from services import blocks as blocking
from services.blocks import Blocks, BlockUser, UnblockUser
from services.create_message import CreateMessage
from services.messages import Messages


def send(world, sender, body, key=None):
    return CreateMessage.run(world.parts.conversations, world.parts.users, world.parts.blocks, sender, body, key)


def texts(world, reader, group):
    page = Messages.run(world.parts.conversations, world.parts.names, world.parts.cursors, reader, group, 50, None)
    return [m["message"] for m in page[0]]


def refused(code, call, *args):
    with pytest.raises((NotPermitted, NotFound, InvalidInput)) as error:
        call(*args)
    assert error.value.codes == [code]


def test_a_block_by_handle_answers_the_user_and_again_the_same(world, ana, bo):
    made = BlockUser.run(world.parts.blocks, world.parts.users, ana, "BO")
    assert (made["handle"], made["display_name"]) == ("bo", "Bo B") and made["blocked_at"]
    assert BlockUser.run(world.parts.blocks, world.parts.users, ana, "bo") == made
    assert Blocks.run(world.parts.blocks, ana) == [made]
    assert Blocks.run(world.parts.blocks, bo) == []


def test_blocking_nobody_oneself_or_a_non_handle_is_refused(world, ana):
    refused("user_not_found", BlockUser.run, world.parts.blocks, world.parts.users, ana, "nobody")
    refused("block_self", BlockUser.run, world.parts.blocks, world.parts.users, ana, "ana")
    refused("handle_invalid", BlockUser.run, world.parts.blocks, world.parts.users, ana, "no spaces")
    refused("user_not_found", UnblockUser.run, world.parts.blocks, world.parts.users, ana, "nobody")
    refused("block_self", UnblockUser.run, world.parts.blocks, world.parts.users, ana, "ana")


def test_a_user_holds_a_bounded_number_of_blocks(world, ana, monkeypatch):
    monkeypatch.setattr(blocking, "BLOCKS_PER_USER", 2)
    for handle in ("b1", "b2", "b3"):
        world.person(handle)
    BlockUser.run(world.parts.blocks, world.parts.users, ana, "b1")
    BlockUser.run(world.parts.blocks, world.parts.users, ana, "b2")
    refused("too_many_blocks", BlockUser.run, world.parts.blocks, world.parts.users, ana, "b3")
    assert [b["handle"] for b in Blocks.run(world.parts.blocks, ana)] == ["b2", "b1"]  # most recent first


def test_while_blocked_neither_side_can_send_and_both_keep_the_history(world, ana, bo):
    group = send(world, ana, {"handle": "bo", "message": "before"})["message_group_uuid"]
    BlockUser.run(world.parts.blocks, world.parts.users, ana, "bo")
    # the blocked user, by handle and into the conversation: "unavailable", nothing stored
    refused("recipient_unavailable", send, world, bo, {"handle": "ana", "message": "let me in"})
    refused("recipient_unavailable", send, world, bo, {"message_group_uuid": group, "message": "hello?"}, "k-1")
    # the blocker: unblock first
    refused("recipient_blocked", send, world, ana, {"handle": "bo", "message": "one more"})
    refused("recipient_blocked", send, world, ana, {"message_group_uuid": group, "message": "one more"})
    assert texts(world, ana, group) == texts(world, bo, group) == ["before"]
    assert UnblockUser.run(world.parts.blocks, world.parts.users, ana, "bo") == {"handle": "bo"}
    assert UnblockUser.run(world.parts.blocks, world.parts.users, ana, "bo") == {"handle": "bo"}  # none left
    world.settle()
    # nothing tried during the block arrives after it; a new send does
    send(world, bo, {"message_group_uuid": group, "message": "after"}, "k-2")
    assert texts(world, ana, group) == ["before", "after"]


def test_a_block_of_a_third_user_changes_nothing_between_two_others(world, ana, bo):
    world.person("cy")
    BlockUser.run(world.parts.blocks, world.parts.users, ana, "cy")
    assert send(world, bo, {"handle": "ana", "message": "hi"})["message"] == "hi"


# -- what a process remembers of blocks (lib/blocks.py BlockCache) -------------------------------
class Listening:
    """A stand-in for the LISTEN connection: notices put in `notes` are delivered; `down` makes
    every connection attempt fail."""

    def __init__(self, down: bool = False):
        import queue

        self.notes: "queue.Queue[str]" = queue.Queue()
        self.down = down
        self.connections = 0
        self.running = threading.Event()  # cleared: the listening is kept from running
        self.running.set()
        self.stalled = threading.Event()

    def __call__(self, url, **settings):
        if self.down:
            raise OSError("no database")
        self.connections += 1
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql):
        assert sql == "LISTEN cruddur_blocks"

    def notifies(self, timeout):
        import queue
        from types import SimpleNamespace

        if not self.running.is_set():
            self.stalled.set()
            self.running.wait()
        try:
            yield SimpleNamespace(payload=self.notes.get(timeout=0.01))
        except queue.Empty:
            return


class CountingStore:
    """The store's twin, counting what the cache asks it."""

    def __init__(self, store):
        self.store, self.asked = store, 0

    def __getattr__(self, name):
        self.asked += name in ("between", "blocked_sets")
        return getattr(self.store, name)


def cache_over(world, connect, url):
    from lib.blocks import BlockCache

    counting = CountingStore(world.parts.blocks)
    return BlockCache(counting, f"postgresql://test/{url}", connect=connect), counting


def until(condition):
    import time

    for _ in range(500):
        if condition():
            return
        time.sleep(0.002)
    raise AssertionError("never")


def test_while_it_listens_a_process_answers_from_memory_and_forgets_on_a_notice(world, ana, bo):
    import uuid

    listening = Listening()
    cache, counting = cache_over(world, listening, uuid.uuid4().hex)
    cache.between(ana["uuid"], bo["uuid"])  # starts listening
    until(lambda: cache._notices.listening.is_set())
    assert cache.between(ana["uuid"], bo["uuid"]) == (False, False)
    asked = counting.asked
    assert cache.between(bo["uuid"], ana["uuid"]) == (False, False) and counting.asked == asked  # from memory
    world.parts.blocks.block(ana["uuid"], bo["uuid"])
    listening.notes.put(ana["uuid"])  # what the block's commit tells every process
    until(lambda: cache.between(ana["uuid"], bo["uuid"]) == (True, False))
    assert cache.between(bo["uuid"], ana["uuid"]) == (False, True)


def test_a_process_that_cannot_listen_asks_the_database_every_time(world, ana, bo):
    import uuid

    cache, counting = cache_over(world, Listening(down=True), uuid.uuid4().hex)
    assert cache.between(ana["uuid"], bo["uuid"]) == (False, False)
    world.parts.blocks.block(bo["uuid"], ana["uuid"])  # no notice can reach it
    assert cache.between(ana["uuid"], bo["uuid"]) == (False, True)
    assert counting.asked == 2


def test_a_load_that_a_notice_overtook_is_not_remembered(world, ana, bo):
    import uuid

    listening = Listening()
    cache, counting = cache_over(world, listening, uuid.uuid4().hex)
    cache.between(ana["uuid"], bo["uuid"])
    until(lambda: cache._notices.listening.is_set())
    cache.forget(None)
    real = counting.store.blocked_sets

    def overtaken(users):
        loaded = real(users)
        cache.forget(ana["uuid"])  # a notice lands while this load is on its way
        return loaded

    from types import SimpleNamespace

    counting.store = SimpleNamespace(blocked_sets=overtaken, between=world.parts.blocks.between)
    cache.between(ana["uuid"], bo["uuid"])
    assert cache._known.get(ana["uuid"]) is None and cache._known.get(bo["uuid"]) is None


def test_a_week5_group_whose_index_shows_only_the_senders_row_is_blocked_too(world, ana, bo):
    """A week-5 group (no header, no layout mark) whose lagging index shows only the sender's
    row: the other participant is the one that row names, and their block holds."""
    from lib.conversations import layout

    world.table.items.pop((layout.LAYOUT_KEY["pk"], layout.LAYOUT_KEY["sk"]), None)
    group = "5b8c3d2e-0000-4000-8000-00000000aa01"
    when = "2026-01-01T00:00:00.000000+00:00"
    world.table.put(layout.group_row(bo["uuid"], ana, group, "old", when))
    world.table.freeze_index()  # the index shows bo's row only
    world.table.put(layout.group_row(ana["uuid"], bo, group, "old", when))
    world.table.put(layout.message_item(group, bo, "old", when))
    BlockUser.run(world.parts.blocks, world.parts.users, ana, "bo")
    refused("recipient_unavailable", send, world, bo, {"message_group_uuid": group, "message": "let me in"})


def test_a_process_whose_listening_has_not_run_lately_asks_the_database(world, ana, bo, monkeypatch):
    """A busy process may not run its listening for a while: a notice would wait unread. Past
    FRESH_SECONDS since the listening last read, memory is not trusted and the send asks."""
    import time
    import uuid

    from lib import blocks as blocks_module

    listening = Listening()
    cache, counting = cache_over(world, listening, uuid.uuid4().hex)
    cache.between(ana["uuid"], bo["uuid"])
    until(lambda: cache._notices.current())
    assert cache.between(ana["uuid"], bo["uuid"]) == (False, False)  # remembered
    monkeypatch.setattr(blocks_module, "FRESH_SECONDS", 0.05)
    listening.running.clear()  # the listening stops running: the block's notice would not be read
    until(listening.stalled.is_set)
    world.parts.blocks.block(ana["uuid"], bo["uuid"])
    time.sleep(0.1)  # past FRESH_SECONDS since it last read
    asked = counting.asked
    try:
        assert cache.between(ana["uuid"], bo["uuid"]) == (True, False) and counting.asked == asked + 1
    finally:
        listening.running.set()
