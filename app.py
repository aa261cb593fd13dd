"""The Cruddur Messages API: the Flask app factory.

Run it with gunicorn (`gunicorn 'app:create_app()'`) or through ./bin/dev.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

from lib import config
from lib.config import Settings
from lib.db import Db, DatabaseUnavailable
from lib.ddb import Ddb
from lib.errors import ApiError

log = logging.getLogger("cruddur")


def error_response(status: int, codes: list[str], detail: str | None = None,
                   headers: dict[str, str] | None = None):
    response = jsonify(codes)
    response.status_code = status
    if detail:
        # A human-readable explanation beside the machine-readable codes (see CONTRACT.md).
        response.headers["X-Error-Detail"] = detail.replace("\n", " ")[:300]
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_errors(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return error_response(error.status, error.codes, error.detail, error.headers)

    @app.errorhandler(DatabaseUnavailable)
    def database_unavailable(error: DatabaseUnavailable):
        log.warning("database unavailable: %s", error)
        return error_response(503, ["database_unavailable"], "PostgreSQL is unavailable",
                              {"Retry-After": "1"})

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        return error_response(error.code or 500, [code], error.description)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error")
        return error_response(500, ["internal_error"])


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app. The database pool and DynamoDB client are owned by the app."""
    settings = settings or config.load()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.extensions["db"] = Db(settings)
    app.extensions["ddb"] = Ddb(settings)
    CORS(app, origins=[settings.frontend_url],
         allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
         expose_headers=["Link", "Retry-After", "X-Error-Detail"],
         methods=["GET", "POST", "OPTIONS"])
    register_errors(app)

    @app.get("/api/health-check")
    def health_check():
        if not app.extensions["db"].ping():
            return error_response(503, ["database_unavailable"], "PostgreSQL is unavailable",
                                  {"Retry-After": "1"})
        return jsonify({"success": True})

    return app
