"""The WSGI entry through which ./bin/bench serves the bootcamp's week-5 backend (bench/bootcamp.py).

Its token verifier fetches the pool's JWKS, once at import, from AWS's fixed address
(https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json); with no internet that
fetch fails and the app does not start. This module sends that one URL to the local pool's JWKS
(BENCH_JWKS_URL) and then imports the backend's own `app`, unchanged. gunicorn's gevent worker
imports it after its monkey-patching, as it would the backend's app.py.
"""
import os

import requests

_JWKS_URL = os.environ["BENCH_JWKS_URL"]
_get = requests.get


def _get_local_jwks(url, *args, **kwargs):
    if url.startswith("https://cognito-idp.") and url.endswith("/.well-known/jwks.json"):
        url = _JWKS_URL
    return _get(url, *args, **kwargs)


requests.get = _get_local_jwks

from app import app  # noqa: E402  (the week-5 backend's app.py, found through gunicorn's --chdir)

__all__ = ["app"]
