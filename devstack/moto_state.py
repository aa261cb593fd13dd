"""The local moto server's data kept across restarts, as DynamoDB Local's -dbPath keeps it.

moto keeps everything in memory. Here the DynamoDB tables (items, indexes, streams) and the
Cognito pools (users with their `sub`s, app clients) are written to one file: every few seconds
while something changed, and when the server stops. The server loads it when it starts, so
conversations, users and the access tokens a signed-in frontend holds survive `./bin/dev` being
stopped and started.

The file is a pickle of moto's own objects: the simplest faithful copy of its state. It is this
machine's own data, read only by the server that wrote it; a file a newer moto cannot read is put
aside (renamed `.unreadable`) and the server starts empty.
"""
from __future__ import annotations

import copyreg
import io
import logging
import os
import pickle
import threading
from pathlib import Path
from typing import Any

from devstack.files import write_atomically

log = logging.getLogger(__name__)

STATE_ENV = "LOCAL_MOTO_STATE"
SAVE_EVERY_SECONDS = 2.0
# The services whose data is kept (moto's names of their backends).
# S3 holds the avatars (SQS is made again by ./bin/dev, and a notice lost with it leaves the
# upload to expire: the user uploads again).
SERVICES = ("dynamodb", "cognitoidp", "s3")


def _backend_dicts() -> dict[str, Any]:
    from moto.cognitoidp.models import cognitoidp_backends
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends

    return {"dynamodb": dynamodb_backends, "cognitoidp": cognitoidp_backends, "s3": s3_backends}


def _pool_signing_key() -> Any:
    """moto signs every pool's tokens with the key of one file it ships: reload it rather than
    pickle the key object (which cannot be)."""
    from joserfc import jwk
    from moto.utilities.utils import load_resource

    return jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))


def _register_reducers() -> None:
    from joserfc import jwk

    copyreg.pickle(jwk.RSAKey, lambda key: (_pool_signing_key, ()))


def snapshot() -> bytes:
    """moto's DynamoDB, Cognito and S3 data, region by region (the caller holds the lock that keeps
    requests out meanwhile)."""
    _register_reducers()
    state = {service: {account: dict(regions) for account, regions in backends.items()}
             for service, backends in _backend_dicts().items()}
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


class _Unpickler(pickle.Unpickler):
    """Reads a snapshot; one written before the local stack moved from lib/local/ to devstack/
    names this package's classes (the harsh index's change log) by their old module, and one
    written before moto's corrections were split by service names the index's buckets by
    devstack/moto_server.py: as `__main__` when the server ran it as `python -m`, as ./bin/dev
    does."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("lib.local."):
            module = "devstack." + module[len("lib.local."):]
        if module in ("devstack.moto_server", "__main__") and name == "_IndexBuckets":
            module, name = "devstack.moto_corrections.dynamodb", "IndexBuckets"
        return super().find_class(module, name)


def loads(data: bytes) -> Any:
    return _Unpickler(io.BytesIO(data)).load()  # noqa: S301 - this machine's own file


def restore(data: bytes) -> int:
    """Put a snapshot's data into moto's backends; returns the number of region backends."""
    _register_reducers()
    state = loads(data)
    restored = 0
    for service, backends in _backend_dicts().items():
        for account, regions in state.get(service, {}).items():
            for region, backend in regions.items():
                dict.__setitem__(backends[account], region, backend)
                restored += 1
    return restored


def set_aside(path: Path) -> Path:
    """Where a state file that could not be read is kept, for whoever wants to look at it."""
    return path.with_suffix(path.suffix + ".unreadable")


class Keeper:
    """Saves the state to `path` while the server runs: every SAVE_EVERY_SECONDS when a request
    may have changed something, and once more on `stop()`."""

    def __init__(self, path: Path, lock: threading.RLock):
        self.path = Path(path)
        self.lock = lock
        self.dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="moto-state", daemon=True)

    def load(self) -> None:
        if not self.path.exists():
            return
        try:
            with self.lock:
                count = restore(self.path.read_bytes())
            log.info("restored %d backends from %s", count, self.path)
        except Exception as error:  # a file of another moto, or cut short: start empty, keep it
            aside = set_aside(self.path)
            os.replace(self.path, aside)
            log.warning("could not restore %s (%s: %s); starting empty, the file is kept as %s",
                        self.path, type(error).__name__, error, aside)

    def start(self) -> None:
        self._thread.start()

    def changed(self) -> None:
        self.dirty.set()

    def save(self) -> None:
        with self.lock:
            self.dirty.clear()
            data = snapshot()
        write_atomically(self.path, data)

    def stop(self) -> None:
        self._stopping.set()
        self.save()

    def _run(self) -> None:
        while not self._stopping.wait(SAVE_EVERY_SECONDS):
            if self.dirty.is_set():
                try:
                    self.save()
                except Exception:  # keep serving; the next round tries again
                    log.exception("saving %s failed", self.path)
