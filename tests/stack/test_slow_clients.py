"""Slow clients do not starve others: connections that send half a request and stall, or trickle
a byte every two seconds, each hold a greenlet of gunicorn's gevent worker, not one of a few
threads. Served as ./bin/dev and the Dockerfile serve it (gunicorn.conf.py)."""
from __future__ import annotations

import runpy
import socket
import threading
import time
from urllib.parse import urlsplit

import requests

from lib import config
from devstack import gunicorn_command

SLOW = 16


def test_slow_and_stalled_clients_do_not_delay_the_health_check(api):
    host, port = urlsplit(api.url).hostname, urlsplit(api.url).port
    stop = threading.Event()
    stalled = []
    for _ in range(SLOW):  # half a request, then nothing
        sock = socket.create_connection((host, port))
        sock.sendall(b"GET /api/health-check HTTP/1.1\r\nHost: x\r\n")
        stalled.append(sock)

    def trickle() -> None:  # a byte every two seconds, never finishing
        with socket.create_connection((host, port)) as sock:
            for byte in b"GET /api/health-check HTTP/1.1\r\nX-Slow: " + b"y" * 100:
                if stop.wait(2.0):
                    return
                sock.sendall(bytes([byte]))

    tricklers = [threading.Thread(target=trickle, daemon=True) for _ in range(SLOW)]
    for thread in tricklers:
        thread.start()
    try:
        time.sleep(0.5)  # all of them connected and stuck
        for _ in range(5):
            # answered within a second, as if the slow ones were not there
            response = requests.get(f"{api.url}/api/health-check", timeout=1.0)
            assert response.status_code == 200
            time.sleep(0.3)
    finally:
        stop.set()
        for sock in stalled:
            sock.close()
        for thread in tricklers:
            thread.join(5)


def test_bin_dev_and_the_image_serve_with_the_same_settings():
    """Both load gunicorn.conf.py, whose workers are gevent's."""
    conf = config.ROOT / "gunicorn.conf.py"
    command = gunicorn_command(4567)
    assert command[command.index("--config") + 1] == str(conf)
    assert "--worker-class" not in command
    dockerfile = (config.ROOT / "Dockerfile").read_text()
    assert '"--config", "gunicorn.conf.py"' in dockerfile and "--worker-class" not in dockerfile
    assert runpy.run_path(str(conf))["worker_class"] == "gevent"
