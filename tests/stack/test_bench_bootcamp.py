"""./bin/bench --bootcamp serves a week-5-shaped backend offline beside this one (bench/bootcamp.py).

The bootcamp's own code is not part of the project, so a stand-in of the same shape is used: an
app.py that, like week 5's token verifier, fetches the pool's JWKS from AWS's fixed address when
it is imported, and imports from a `services` folder without __init__.py (which this project's
own `services` package must not shadow)."""
from __future__ import annotations

import sys
import textwrap

import requests

from bench.bootcamp import Bootcamp
from devstack import Stack

APP = textwrap.dedent('''
    import os

    import requests
    from flask import Flask

    from services.notifications import NOTIFICATIONS

    region, pool = os.environ["AWS_DEFAULT_REGION"], os.environ["AWS_COGNITO_USER_POOL_ID"]
    KEYS = requests.get(f"https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json",
                        timeout=5).json()["keys"]
    app = Flask(__name__)


    @app.route("/api/activities/notifications")
    def notifications():
        return {"notifications": NOTIFICATIONS, "kids": [key["kid"] for key in KEYS]}


    @app.route("/api/work")
    def work():
        return {"total": sum(i * i for i in range(300_000))}
''')


def test_the_week5_shape_starts_offline_and_its_workers_cpu_is_read(settings, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "notifications.py").write_text("NOTIFICATIONS = ['week 5']\n")
    backend = Bootcamp(tmp_path, python=sys.executable)
    stack = Stack()
    try:
        url = backend.start(settings, stack, workers=1, log_file=tmp_path / "backend.log")
        answer = requests.get(url + "/api/activities/notifications", timeout=10).json()
        # its own services module, and the local pool's keys fetched at its import
        assert answer["notifications"] == ["week 5"]
        jwks = requests.get(f"{settings.aws_endpoint_url}/{settings.cognito_user_pool_id}"
                            "/.well-known/jwks.json", timeout=10).json()
        assert answer["kids"] == [key["kid"] for key in jwks["keys"]] and answer["kids"]
        # the CPU its worker spends serving shows in what the benchmark reads
        before = backend.cpu_seconds()
        for _ in range(10):
            assert requests.get(url + "/api/work", timeout=30).status_code == 200
        assert backend.cpu_seconds() > before
    finally:
        stack.stop()
