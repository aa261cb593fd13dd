"""The Cruddur Messages API: the Flask app factory and its routes.

Run it with gunicorn (`gunicorn 'app:create_app()'`) or through ./bin/dev. Routes are thin: they
read the request, call one service, and shape the response; the services hold the use cases.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from lib import config, metrics
from lib.config import Settings
from lib.db import DatabaseUnavailable
from lib.errors import ApiError, BadRequest
from services import validation
from services.backend import Backend
from services.create_message import CreateMessage
from services.current_user import CurrentUser
from services.message_groups import MessageGroups
from services.messages import Messages
from services.users_short import UsersShort

log = logging.getLogger("cruddur")
access_log = logging.getLogger("cruddur.access")

MAX_BODY_BYTES = 64 * 1024
# DynamoDB errors that mean "not now" rather than "never": botocore has already retried them.
RETRYABLE_AWS_CODES = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionInProgressException",
    "TransactionConflictException", "LimitExceededException",
}

RETRYABLE_CANCELLATION_CODES = {"ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict"}

health = Blueprint("health", __name__)
messages = Blueprint("messages", __name__)
users = Blueprint("users", __name__)


def backend() -> Backend:
    return current_app.extensions["backend"]


def error_response(status: int, codes: list[str], detail: str | None = None,
                   headers: dict[str, str] | None = None):
    """Every error body is a JSON array of codes (the frontend calls .map on it)."""
    response = jsonify(codes)
    response.status_code = status
    if detail:
        # A human-readable explanation beside the machine-readable codes, as the frontend contract allows.
        response.headers["X-Error-Detail"] = " ".join(detail.split())[:300]
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def unavailable(code: str, detail: str):
    return error_response(503, [code], detail, {"Retry-After": "1"})


def caller() -> dict[str, Any]:
    user = CurrentUser.run(backend(), request.headers.get("Authorization"))
    g.caller = user["uuid"]
    return user


def json_body() -> Any:
    # Read first, so that a body over MAX_BODY_BYTES is 413 whatever its content type. A body without
    # Content-Length (chunked) is cut at the limit rather than refused by werkzeug: refuse it here.
    if len(request.get_data(cache=True)) >= MAX_BODY_BYTES and request.content_length is None:
        raise RequestEntityTooLarge()
    if not request.is_json:
        raise BadRequest("body_invalid", detail="send a JSON object with Content-Type: application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes ("[[[[..."): not a 500
        body = None
    if body is None:
        raise BadRequest("body_invalid", detail="the body is not valid JSON")
    return body


def page_response(items: list[dict[str, Any]], next_cursor: str | None, limit: int):
    """A bare JSON array (as the frontend expects) with an RFC 8288 Link to the next page."""
    response = jsonify(items)
    if next_cursor:
        query = urlencode({"limit": limit, "cursor": next_cursor})
        response.headers["Link"] = f'<{request.base_url}?{query}>; rel="next"'
    return response


@health.get("/api/health-check")
def health_check():
    if not backend().db.ping():
        return unavailable("database_unavailable", "PostgreSQL is unavailable")
    return jsonify({"success": True})


@messages.get("/api/message_groups")
def message_groups():
    user = caller()
    limit = validation.limit(request.args.get("limit"))
    items, next_cursor = MessageGroups.run(backend(), user, limit, request.args.get("cursor"))
    return page_response(items, next_cursor, limit)


@messages.get("/api/messages/<message_group_uuid>")
def messages_of_group(message_group_uuid: str):
    user = caller()
    limit = validation.limit(request.args.get("limit"))
    items, next_cursor = Messages.run(backend(), user, message_group_uuid, limit,
                                      request.args.get("cursor"))
    return page_response(items, next_cursor, limit)


@messages.post("/api/messages")
def create_message():
    user = caller()
    key = validation.idempotency_key(request.headers.get("Idempotency-Key"))
    return jsonify(CreateMessage.run(backend(), user, json_body(), key))


@users.get("/api/users/@<handle>/short")
def users_short(handle: str):
    return jsonify(UsersShort.run(backend(), handle))


def register_errors(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return error_response(error.status, error.codes, error.detail, error.headers)

    @app.errorhandler(DatabaseUnavailable)
    def database_unavailable(error: DatabaseUnavailable):
        log.warning("database unavailable: %s", error)
        return unavailable("database_unavailable", "PostgreSQL is unavailable")

    @app.errorhandler(ClientError)
    def aws_error(error: ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        # A cancelled transaction says why per operation: throttled parts mean "try again".
        reasons = {r.get("Code") for r in error.response.get("CancellationReasons", [])}
        if (code in RETRYABLE_AWS_CODES or reasons & RETRYABLE_CANCELLATION_CODES
                or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500):
            log.warning("DynamoDB unavailable after retries: %s", code)
            return unavailable("store_unavailable", "DynamoDB is busy, try again")
        log.error("DynamoDB error %s: %s", code, error)
        return error_response(500, ["internal_error"])

    @app.errorhandler(BotoCoreError)
    def aws_connection_error(error: BotoCoreError):
        log.warning("DynamoDB unreachable: %s", error)
        return unavailable("store_unavailable", "DynamoDB is unreachable, try again")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        # Keep the error's own headers but its HTML content type (e.g. Allow of a 405, RFC 9110).
        own = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return error_response(error.code or 500, [code], error.description, own)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error")
        return error_response(500, ["internal_error"])


def register_access_log(app: Flask) -> None:
    """One JSON line per request: no tokens, no message text."""

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()
        g.caller = None

    @app.after_request
    def log_request(response):
        started = g.get("started")
        access_log.info(json.dumps({
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else None,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "caller": g.get("caller"),
        }))
        return response


def create_app(settings: Settings | None = None, backend_: Backend | None = None) -> Flask:
    """Build the app. It owns the backend: the PostgreSQL pool, the DynamoDB client and caches."""
    settings = settings or config.load()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    app.extensions["backend"] = backend_ or Backend.from_settings(settings)
    CORS(app, origins=[settings.frontend_url],
         allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
         expose_headers=["Link", "Retry-After", "X-Error-Detail"],
         methods=["GET", "POST", "OPTIONS"])
    for blueprint in (health, messages, users):
        app.register_blueprint(blueprint)
    if settings.metrics_enabled:
        app.add_url_rule("/api/_metrics", "metrics", lambda: jsonify(metrics.snapshot()))
    register_errors(app)
    register_access_log(app)
    return app
