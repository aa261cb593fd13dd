"""./bin/dev as a whole: it starts the local stack from nothing on free ports, serves the API with
the seeded data, and on SIGTERM stops every process it started. A busy port is a one-line error."""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import pytest

from lib import config
from devstack import free_port
from tests import tables

ROOT = config.ROOT
START_TIMEOUT = 120  # the first start runs initdb; later ones take a few seconds
STOP_TIMEOUT = 30
# What would make bin/dev use something else than what it starts itself.
FOREIGN = ("CONNECTION_URL", "AWS_ENDPOINT_URL", "LOCAL_AWS", "AWS_COGNITO_USER_POOL_ID",
           "AWS_COGNITO_USER_POOL_CLIENT_ID", "DDB_MESSAGE_TABLE", "PROD_CONNECTION_URL", "PORT",
           "LOCAL_PG_PORT", "LOCAL_AWS_PORT", "LOCAL_PG_DATA", "LOCAL_MOTO_STATE",
           "STREAM_WORKER_CHECKPOINT")
# What the first test leaves for the restart test: a token, the conversation, a message in it.
BEFORE_RESTART: dict[str, str] = {}


@dataclass
class Dev:
    proc: subprocess.Popen
    env: dict[str, str]
    stderr_path: Path
    lines: "queue.Queue[str | None]" = field(default_factory=queue.Queue)
    stdout: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.env["PORT"])

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.stdout.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} line (exit code {self.proc.poll()}):\n"
                             + "".join(self.stdout) + self.stderr_path.read_text()[-3000:])

    def cleanup(self) -> None:
        """After a failure: stop it the normal way first, so that it stops its children too."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> int:
        """SIGTERM, then the exit code (0 expected) and stderr's tail when it is not."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(STOP_TIMEOUT)
        assert code == 0, self.stderr_path.read_text()[-3000:]
        return code


def dev_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    env.update(LOCAL_PG_DATA=str(data_dir), LOCAL_PG_PORT=str(free_port()),
               LOCAL_AWS_PORT=str(free_port()), PORT=str(free_port()),
               LOCAL_MOTO_STATE=str(data_dir.parent / f"{data_dir.name}-moto.pickle"),
               STREAM_WORKER_CHECKPOINT=str(data_dir.parent / f"{data_dir.name}-stream.json"), **extra)
    return env


def api_call(dev: Dev, path: str, token: str, body: dict | None = None) -> tuple[int, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{dev.port}{path}", data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def start(env: dict[str, str], log_dir: Path) -> Dev:
    stderr_path = log_dir / f"dev-{env['PORT']}.err"
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([str(ROOT / "bin" / "dev")], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    dev = Dev(proc, env, stderr_path)

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            dev.lines.put(line)
        dev.lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return dev


def get_json(url: str) -> tuple[int, object]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


def leftovers(dev: Dev, pids: dict[int, float]) -> list[str]:
    """Processes still running that this bin/dev started: by pid (with the same start time), or by
    a command line naming its data directory or one of its ports."""
    markers = [dev.env["LOCAL_PG_DATA"], f"127.0.0.1:{dev.env['PORT']}", f"-p {dev.env['LOCAL_AWS_PORT']}",
               f"-p {dev.env['LOCAL_PG_PORT']}"]
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "create_time", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.info["pid"] == os.getpid():
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        if pids.get(proc.info["pid"]) == proc.info["create_time"] or any(m in cmdline for m in markers):
            found.append(f"{proc.info['pid']} {cmdline}")
    return found


def wait_until_gone(dev: Dev, pids: dict[int, float], timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = leftovers(dev, pids)
        if not remaining or time.monotonic() > deadline:
            return remaining
        time.sleep(0.2)


def descendants(pid: int) -> dict[int, float]:
    found = {}
    for child in psutil.Process(pid).children(recursive=True):
        try:
            found[child.pid] = child.create_time()
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture(scope="module")
def pg_data():
    """One PostgreSQL data directory for the module, so that a restart can reuse it. Not under
    pytest's temporary directory: as root, PostgreSQL runs as another user that must traverse the
    parents, and every pytest session starting meanwhile makes pytest's own directory private."""
    base = Path(tempfile.mkdtemp(prefix="cruddur-dev-test-"))
    yield base / "pgdata"
    shutil.rmtree(base, ignore_errors=True)


def seeded_handles(dev: Dev) -> dict[str, str | None]:
    url = f"postgresql://postgres@127.0.0.1:{dev.env['LOCAL_PG_PORT']}/cruddur"
    with psycopg.connect(url, connect_timeout=5) as conn:
        return dict(conn.execute("SELECT handle, cognito_user_id FROM public.users").fetchall())


def pool_subs(dev: Dev) -> dict[str, str]:
    from lib import aws, cognito
    from devstack import LocalSettings
    from devstack.cognito import find_pool

    settings = config.load({}).with_(aws_endpoint_url=f"http://127.0.0.1:{dev.env['LOCAL_AWS_PORT']}")
    client = aws.client(settings, "cognito-idp")
    return {u["preferred_username"]: u["sub"]
            for u in cognito.pool_users(client, find_pool(client, LocalSettings()))}


def test_dev_serves_the_seeded_stack_and_stops_everything(pg_data, tmp_path):
    dev = start(dev_env(pg_data), tmp_path)
    pids: dict[int, float] = {}
    try:
        dev.wait_for("ready  api", START_TIMEOUT)
        assert [line.split()[1] for line in dev.stdout if line.startswith("ready")][:2] == ["postgres", "moto"]
        assert get_json(f"http://127.0.0.1:{dev.port}/api/health-check") == (200, {"success": True})

        users = seeded_handles(dev)
        assert {"andrewbrown", "bayko", "londo"} <= set(users)
        # linked to the local pool by the Cognito sub
        subs = pool_subs(dev)
        assert all(users[h] == subs[h] for h in ("andrewbrown", "bayko", "londo"))

        from lib.conversations.layout import group_uuid_for
        from lib.ddb import Ddb
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{dev.env['LOCAL_PG_PORT']}/cruddur") as conn:
            a, b = (str(conn.execute("SELECT uuid FROM public.users WHERE handle = %s", [h]).fetchone()[0])
                    for h in ("andrewbrown", "bayko"))
            # a marker for the restart test: PostgreSQL data is kept across restarts
            conn.execute("INSERT INTO public.users (display_name, handle, email) VALUES "
                         "('Kept', 'kept_across_restarts', 'kept@example.com') ON CONFLICT DO NOTHING")
        ddb = Ddb(config.load({}).with_(aws_endpoint_url=f"http://127.0.0.1:{dev.env['LOCAL_AWS_PORT']}"))
        assert len(tables.messages_page(ddb, group_uuid_for(a, b), 100).items) >= 20

        # for the restart test: a signed-in user's token, and a message sent with it
        from devstack import access_token

        aws = config.load({}).with_(aws_endpoint_url=f"http://127.0.0.1:{dev.env['LOCAL_AWS_PORT']}")
        token = access_token(aws, "bayko")
        status, sent = api_call(dev, "/api/messages", token,
                                {"message": "before the restart", "message_group_uuid": group_uuid_for(a, b)})
        assert status == 200
        BEFORE_RESTART.update(token=token, group=group_uuid_for(a, b), message=sent["uuid"],
                              sub=subs["bayko"])

        pids = descendants(dev.proc.pid)
        assert len(pids) >= 3, "postgres, moto and gunicorn run as children"
        assert dev.stop() == 0
    finally:
        dev.cleanup()
    assert wait_until_gone(dev, pids) == []


def test_dev_restart_keeps_postgres_and_moto_data(pg_data, tmp_path):
    """Stopped and started again, ./bin/dev serves the same data: PostgreSQL's, and moto's
    (conversations, the pool's users with their subs), so a token from before still works."""
    if not (pg_data / "PG_VERSION").exists() or not BEFORE_RESTART:
        pytest.skip("needs the data directory of the previous test")
    dev = start(dev_env(pg_data), tmp_path)
    pids: dict[int, float] = {}
    try:
        dev.wait_for("ready  api", START_TIMEOUT)
        pids = descendants(dev.proc.pid)
        users = seeded_handles(dev)
        assert "kept_across_restarts" in users
        subs = pool_subs(dev)
        assert users["bayko"] == subs["bayko"] == BEFORE_RESTART["sub"]
        status, listed = api_call(dev, f"/api/messages/{BEFORE_RESTART['group']}", BEFORE_RESTART["token"])
        assert status == 200 and BEFORE_RESTART["message"] in [m["uuid"] for m in listed]
        assert "initialising PostgreSQL data" not in dev.stderr_path.read_text()
        assert dev.stop() == 0
    finally:
        dev.cleanup()
    assert wait_until_gone(dev, pids) == []


@pytest.mark.parametrize("name, value", [("LOCAL_PG_PORT", "abc"), ("DB_TIMEOUT_SECONDS", "soon")])
def test_dev_with_a_variable_it_cannot_use_is_a_one_line_error(name, value, pg_data, tmp_path):
    """Before anything is started: one line naming the variable, no trace."""
    dev = start({**dev_env(pg_data.parent / f"bad-{name}"), name: value}, tmp_path)
    try:
        code = dev.proc.wait(STOP_TIMEOUT)
    finally:
        dev.cleanup()
    assert code == 1
    err = dev.stderr_path.read_text()
    assert [line for line in err.splitlines() if line.strip()] == [
        f"bin/dev: {name} must be a whole number from 1 to 65535, not {value!r}" if name.endswith("PORT")
        else f"bin/dev: {name} must be a number of at least 0.1, not {value!r}"], err


@pytest.mark.parametrize("busy", ["PORT", "LOCAL_AWS_PORT", "LOCAL_PG_PORT"])
def test_dev_busy_port_is_a_one_line_error(busy, pg_data, tmp_path):
    env = dev_env(pg_data.parent / f"busy-{busy}")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env[busy])))
        blocker.listen()
        dev = start(env, tmp_path)
        try:
            code = dev.proc.wait(STOP_TIMEOUT)
        finally:
            dev.cleanup()
    assert code != 0
    errors = [line for line in dev.stderr_path.read_text().splitlines() if line.startswith("bin/dev: ")]
    assert len(errors) == 1, dev.stderr_path.read_text()
    assert f"port {env[busy]} on 127.0.0.1 is busy" in errors[0]
    assert "Traceback" not in dev.stderr_path.read_text()
    assert wait_until_gone(dev, {}) == []


def test_moto_creates_its_log_directory(pg_data):
    """On a fresh clone with an external PostgreSQL, .local/ does not exist when moto starts."""
    from devstack import LocalMoto

    log_file = pg_data.parent / "fresh" / "logs" / "moto.log"
    moto = LocalMoto(free_port(), log_file).start()
    try:
        assert get_json(f"{moto.url}/moto-api/data.json")[0] == 200
    finally:
        moto.stop()
    assert log_file.exists()


def test_an_external_endpoint_without_cognito_still_gets_its_table_and_seed(fresh_table, monkeypatch):
    """DynamoDB Local (AWS_ENDPOINT_URL) does no Cognito: bin/dev serves without sign-in rather than
    not at all. Without an explicit endpoint a Cognito failure is still an error."""
    from botocore.exceptions import ClientError

    from lib.ddb import Ddb
    from devstack import LocalSettings, load_data
    from devstack import cognito as local_cognito

    def no_cognito(settings, local):
        raise ClientError({"Error": {"Code": "UnknownOperationException", "Message": ""}}, "ListUserPools")

    monkeypatch.setattr(local_cognito, "ensure_pool", no_cognito)
    unlinked = fresh_table.with_(cognito_user_pool_id=None, cognito_client_id=None)
    reported: list[tuple[str, str]] = []
    loaded = load_data(unlinked, LocalSettings(), cognito_optional=True,
                       report=lambda *line: reported.append(line))
    assert loaded.cognito_user_pool_id is None
    assert [c for c, _ in reported] == ["schema", "cognito", "seed", "assets"]
    assert reported[1][1].startswith("none at")
    scan = Ddb(fresh_table).client.scan(TableName=fresh_table.ddb_table, Select="COUNT")
    assert scan["Count"] >= 23

    with pytest.raises(ClientError):
        load_data(unlinked, LocalSettings())


def test_a_second_stack_on_the_first_ones_database_is_refused_while_the_first_answers(settings):
    """Issue 24, item 17: a second ./bin/dev whose own Cognito is elsewhere, pointed at the first
    one's PostgreSQL, would re-link every user to its pool; it is refused while the Cognito the
    users are linked to answers, and takes over once that one is gone."""
    import socket

    from lib.db import Db
    from devstack import StackError
    from devstack.stack import claim_links

    ours = settings.endpoint_for("cognito-idp")
    db = Db(settings)
    live = socket.socket()
    live.bind(("127.0.0.1", 0))
    live.listen(4)
    other = f"http://127.0.0.1:{live.getsockname()[1]}"
    try:
        with pytest.raises(StackError, match="another ./bin/dev"):
            claim_links(db, other)  # the suite's own moto answers
        claim_links(db, ours)  # the same stack again: fine
        claim_links_from = db.query_value("SELECT cognito_endpoint FROM public.local_stack_links")
        assert claim_links_from == ours
        live.close()
        db.query_commit("UPDATE public.local_stack_links SET cognito_endpoint = %s", [other])
        claim_links(db, ours)  # the other stack is gone: its claim passes on
        assert db.query_value("SELECT cognito_endpoint FROM public.local_stack_links") == ours
    finally:
        live.close()
        db.query_commit("UPDATE public.local_stack_links SET cognito_endpoint = %s", [ours])
        db.close()


def test_load_only_needs_the_stores_named_and_waits_for_them_a_bounded_time(tmp_path):
    """`bin/dev --load-only` (docker-compose.yml's setup) starts nothing: without stores named it
    says what to set; with a store that never answers it gives up with one line naming it.
    (Loading running stores is tested through the compose file: test_compose.py.)"""
    from devstack import StackError, wait_for_stores
    from lib.config import Settings

    env = {k: v for k, v in os.environ.items() if k not in ("CONNECTION_URL", "AWS_ENDPOINT_URL")}
    refused = subprocess.run([sys.executable, "-m", "cli.dev", "--load-only"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("bin/dev --load-only: set CONNECTION_URL and AWS_ENDPOINT_URL "
                                      "to the stores to load")
    nobody = free_port()
    silent = Settings(connection_url=f"postgresql://postgres@127.0.0.1:{nobody}/cruddur",
                      aws_endpoint_url=f"http://127.0.0.1:{nobody}")
    with pytest.raises(StackError, match=f"postgres at 127.0.0.1:{nobody} did not answer within 1 s"):
        wait_for_stores(silent, timeout=1)
