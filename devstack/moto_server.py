"""moto's server as the local stack runs it: moto corrected to behave as the AWS services do
(devstack/moto_corrections/, one module per service it corrects, listed with their reasons in
its docstring), and, with LOCAL_MOTO_STATE set, its data kept across restarts
(devstack/moto_state.py).

`python -m devstack.moto_server -H 127.0.0.1 -p PORT` takes moto.server's own arguments.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import moto.server

from devstack import moto_state
from devstack.moto_corrections import dynamodb, install


def main(argv: list[str] | None = None) -> None:
    """moto's server, corrected; with LOCAL_MOTO_STATE set, its data kept in that file."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = os.environ.get(moto_state.STATE_ENV)
    keeper = moto_state.Keeper(Path(state), dynamodb.LOCK) if state else None
    install(keeper=keeper)
    dynamodb.freeze_after_full_collections()
    if keeper:
        keeper.load()
        keeper.start()
    try:
        # moto's own SIGTERM and SIGINT handlers end it with SystemExit, through here
        moto.server.main(argv if argv is not None else sys.argv[1:])
    finally:
        if keeper:
            keeper.stop()  # the last changes


if __name__ == "__main__":
    main()
