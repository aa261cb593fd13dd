"""Follow one request, or one live event, through the code as a reader would, and count how often
it goes back into a module it had already left (a module further up the call stack called again
from below it: a circle between modules, or a callback).

    ./bin/py tests/follow.py            # both walks, module by module
    ./bin/py tests/follow.py --counts   # one line each

What is followed runs for real over the in-memory twins of the adapters (tests/fakes.py,
tests/memory_table.py): a first message by handle, POST /api/messages through Flask's test
client, and that message's stream records through the events Lambda's handler into the log.
Only the project's own modules are counted (app.py, routes/, services/, domain/, lib/, the
Lambdas); Flask, boto3 and the standard library are left out. tests/fast/test_structure.py holds
both counts to a few.
"""
from __future__ import annotations

import logging
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OURS = ("app.py", "routes/", "services/", "domain/", "lib/", "aws/lambdas/")


@dataclass
class Walk:
    """The modules a walk entered, in order (each once), and each call back into a module left."""
    entered: list[str] = field(default_factory=list)
    back_into: list[tuple[str, str]] = field(default_factory=list)  # (from, back into)


def module_of(filename: str) -> str | None:
    try:
        relative = Path(filename).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None
    if not relative.startswith(OURS) or not relative.endswith(".py"):
        return None
    return relative


def follow(action: Callable[[], Any]) -> Walk:
    """Run `action`, watching every call into a project module."""
    walk = Walk()

    def project_stack(frame: types.FrameType | None) -> list[str]:
        found: list[str] = []
        while frame is not None:
            module = module_of(frame.f_code.co_filename)
            if module and (not found or found[-1] != module):
                found.append(module)
            frame = frame.f_back
        return found[::-1]  # outermost first

    def watch(frame: types.FrameType, event: str, _: Any) -> None:
        if event != "call":
            return
        module = module_of(frame.f_code.co_filename)
        if module is None:
            return
        if module not in walk.entered:
            walk.entered.append(module)
        above = project_stack(frame.f_back)
        if above and above[-1] != module and module in above:
            walk.back_into.append((above[-1], module))

    sys.setprofile(watch)
    try:
        action()
    finally:
        sys.setprofile(None)
    return walk


def walks() -> dict[str, Walk]:
    """The two walks: one POST /api/messages, and the live events its stream records make."""
    from app import create_app
    from devstack import lambdas
    from domain.cursors import Cursors
    from lib.cache import Cache
    from lib.config import Settings
    from lib.conversations import table_setup
    from lib.conversations.participants import Participants
    from lib.conversations.store import ConversationStore
    from services.bootstrap import Parts
    from services.names import Names
    from tests.fakes import FakeTokens, MemoryActivities, MemoryBlocks, MemoryEventLog, MemoryUsers, quiet_hub
    from tests.memory_table import MemoryTable

    table = MemoryTable(exists=False)
    table_setup.create_table(table)
    table.stream_records()
    users, log = MemoryUsers(), MemoryEventLog()
    users.add("ana", cognito_user_id="sub-ana")
    users.add("bo", cognito_user_id="sub-bo")
    tokens = FakeTokens()
    settings = Settings(cursor_secret="follow", db_pool_min=0, cognito_user_pool_id="p", cognito_client_id="c")
    database = types.SimpleNamespace(ping=lambda: True, close=lambda: None)  # what the health check asks
    parts = Parts(settings=settings, db=database, conversations=ConversationStore(table), users=users,  # type: ignore[arg-type]
                  names=Names(users),  # type: ignore[arg-type]
                  activities=MemoryActivities(users), events=log, tokens=tokens,  # type: ignore[arg-type]
                  cursors=Cursors(b"follow"), known_users=Cache(max_size=10), attributes_of=None,
                  table_probe=table, readiness=Cache(max_size=1), live=quiet_hub(),  # type: ignore[arg-type]
                  blocks=MemoryBlocks(users))  # type: ignore[arg-type]
    client = create_app(settings, parts).test_client()
    auth = {"Authorization": f"Bearer {tokens.issue('sub-ana')}"}
    client.get("/api/health-check")  # Flask's first request sets itself up: not part of the walk

    def post() -> None:
        answer = client.post("/api/messages", json={"handle": "bo", "message": "hi bo"}, headers=auth)
        assert answer.status_code == 200, answer.data

    found: dict[str, Walk] = {"POST /api/messages (a first message, by handle)": follow(post)}

    handler = lambdas.load(lambdas.LAMBDAS / "cruddur-messaging-events.py")
    handler._participants = Participants(table)  # the container's, over the in-memory table
    handler._db = types.SimpleNamespace(get=lambda: None, forget=lambda: None)  # no PostgreSQL:
    handler.event_log = types.SimpleNamespace(append=lambda conn, events: log.append(events),  # the log's
                                              purge=lambda conn, **bounds: 0)  # in-memory twin
    records = table.stream_records()
    found["a live event (the events Lambda, that message's records)"] = follow(
        lambda: handler.lambda_handler({"Records": records}, None))
    parts.live.close_all()
    return found


def main(argv: list[str]) -> int:
    logging.disable(logging.INFO)  # the access log's and the Lambda's lines: not what is asked
    for name, walk in walks().items():
        print(f"{name}: {len(walk.entered)} modules, {len(walk.back_into)} calls back into a module left")
        if "--counts" in argv:
            continue
        for module in walk.entered:
            print(f"    {module}")
        for caller, module in walk.back_into:
            print(f"  back into {module} from {caller}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
