"""Reading requests and shaping responses, shared by the route modules."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from domain.errors import MalformedRequest
from services.bootstrap import Parts
from services.current_user import CurrentUser

MAX_BODY_BYTES = 64 * 1024


def parts() -> Parts:
    """The app's adapters and caches (built once by create_app)."""
    return current_app.extensions["parts"]


def caller() -> dict[str, Any]:
    """The signed-in user of this request ({uuid, display_name, handle}), or Unauthenticated."""
    app = parts()
    user = CurrentUser.run(app.tokens, app.users, app.known_users, request.headers.get("Authorization"),
                           app.attributes_of)
    g.caller = user["uuid"]
    return user


def json_body() -> Any:
    """The request's JSON body (any JSON value), or MalformedRequest."""
    # Read first, so that a body over MAX_BODY_BYTES is 413 whatever its content type. A body without
    # Content-Length (chunked) is cut at the limit rather than refused by werkzeug: refuse it here.
    if len(request.get_data(cache=True)) >= MAX_BODY_BYTES and request.content_length is None:
        raise RequestEntityTooLarge()
    if not request.is_json:
        raise MalformedRequest("body_invalid",
                               detail="send a JSON object with Content-Type: application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes ("[[[[..."): not a 500
        body = None
    if body is None:
        raise MalformedRequest("body_invalid", detail="the body is not valid JSON")
    return body


def page_response(page: list[dict[str, Any]] | dict[str, Any], next_cursor: str | None, limit: int) -> Response:
    """A page (a bare JSON array, as the frontends read lists; or an object holding one) with an
    RFC 8288 Link to the next page: the same query (a search's term, say) with the next cursor."""
    response = jsonify(page)
    if next_cursor:
        query = urlencode({**request.args.to_dict(), "limit": limit, "cursor": next_cursor})
        response.headers["Link"] = f'<{next_page_base()}?{query}>; rel="next"'
    return response


def next_page_base() -> str:
    """Where the next page is, as the client reaches us. Never from the request's own Host
    header, which the client chooses: PUBLIC_URL if set; else, behind trusted proxies, the
    scheme and host they forwarded; else a reference relative to the request (RFC 3986)."""
    public_url = current_app.config.get("PUBLIC_URL")
    if public_url:
        return f"{public_url}{request.path}"
    if current_app.config.get("TRUSTED_PROXY_HOPS"):
        return request.base_url
    return request.path


def error_response(status: int, codes: list[str], detail: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """Every error body is a JSON array of codes (the frontend calls .map on it)."""
    response = jsonify(codes)
    response.status_code = status
    if detail:
        # A human-readable explanation beside the machine-readable codes, as the contract allows.
        response.headers["X-Error-Detail"] = " ".join(detail.split())[:300]
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
