"""What gunicorn refuses before the app sees it (a request line or headers over its limits, a
request that is not HTTP) is answered as the app answers errors: a JSON array of a code listed in
openapi.yml, with the explanation in X-Error-Detail (gunicorn.conf.py). Sent over raw sockets to
the server as ./bin/dev serves it."""
from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import yaml

from lib import config

ERROR_CODES = set(yaml.safe_load((config.ROOT / "openapi.yml").read_text())
                  ["components"]["schemas"]["ErrorCode"]["enum"])


def exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as is; (status, headers, body) of the answer, read until gunicorn closes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        assert name not in headers, f"{name} twice"
        headers[name] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("request_bytes, status, code", [
    (b"GET /api/health-check?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     414, "request_line_too_long"),
    (b"GET /api/health-check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * 9000
     + b"\r\n\r\n", 431, "request_headers_too_large"),
    (b"GET /api/health-check HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n", 431, "request_headers_too_large"),
    (b"NOT HTTP AT ALL\r\n\r\n", 400, "request_malformed"),
    (b"GET /api/health-check HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n", 400, "request_malformed"),
])
def test_a_request_gunicorn_refuses_gets_a_json_array_of_a_listed_code(api, request_bytes, status,
                                                                      code):
    got, headers, body = exchange(api.url, request_bytes)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert json.loads(body) == [code] and code in ERROR_CODES
    assert int(headers["content-length"]) == len(body)
    assert headers["x-error-detail"] and len(headers["x-error-detail"]) <= 300


def test_what_the_client_sent_cannot_add_a_header_through_the_explanation(api):
    """gunicorn's explanation quotes the refused line; a CR, LF or other control byte in it comes
    out as '?', never as a line of the response."""
    got, headers, body = exchange(
        api.url, b"GET /\x01\x0bX-Injected: yes HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got == 400 and json.loads(body) == ["request_malformed"]
    assert "x-injected" not in headers
    assert all(0x20 <= ord(c) <= 0x7e for c in headers["x-error-detail"])
