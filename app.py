"""The Cruddur Messages API: the Flask app factory.

Run it with gunicorn (`gunicorn 'app:create_app()'`) or through ./bin/dev. The routes are in
routes/ (one blueprint per area), the use cases in services/, the adapters in lib/. Here: settings,
adapters, CORS, blueprints, the one table that maps errors to HTTP statuses, and the access log.
"""
from __future__ import annotations

import atexit
import json
import logging
import time
from typing import NoReturn

from flask import Flask, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_cors import CORS
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from lib import config, metrics, telemetry
from lib.config import Settings
from domain.errors import (Busy, Conflict, CruddurError, Gone, InvalidInput, MalformedRequest, NotFound,
                        NotPermitted, Unauthenticated, Unavailable)
from routes import activities, avatars, blocks, events, health, messages, users
from routes.http import MAX_BODY_BYTES, error_response
from services.bootstrap import Parts

log = logging.getLogger("cruddur")
access_log = logging.getLogger("cruddur.access")

# What each kind of error means over HTTP: the one place the app decides it.
ERROR_STATUS: dict[type[CruddurError], int] = {
    MalformedRequest: 400,
    Unauthenticated: 401,
    NotPermitted: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    InvalidInput: 422,
    Busy: 429,
    Unavailable: 503,
}


def status_of(error: CruddurError) -> int:
    for kind in type(error).__mro__:
        if kind in ERROR_STATUS:
            return ERROR_STATUS[kind]
    return 500


def bearer_challenge(error: Unauthenticated) -> str:
    """The challenge a 401 must carry (RFC 9110 11.6.1), in the form RFC 6750 gives bearer tokens:
    no error code when the request had no token at all (3.1), else `invalid_token` (malformed,
    expired, forged or foreign alike)."""
    if "token_missing" in error.codes:
        return "Bearer"
    return 'Bearer error="invalid_token"'


def register_errors(app: Flask) -> None:
    @app.errorhandler(CruddurError)
    def domain_error(error: CruddurError) -> Response:
        headers = {}
        if isinstance(error, Unavailable):
            log.warning("unavailable (%s): %s", ", ".join(error.codes), error)
            headers["Retry-After"] = str(error.retry_after)
        if isinstance(error, Unauthenticated):
            headers["WWW-Authenticate"] = bearer_challenge(error)
        return error_response(status_of(error), error.codes, error.detail, headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        code = (error.name or "error").lower().replace(" ", "_")
        # Keep the error's own headers but its HTML content type (e.g. Allow of a 405, RFC 9110).
        own = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return error_response(error.code or 500, [code], error.description, own)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, ["internal_error"])


def register_access_log(app: Flask) -> None:
    """One JSON line per request: no tokens, no message text."""

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()
        g.caller = None

    @app.after_request
    def log_request(response: Response) -> Response:
        if not access_log.isEnabledFor(logging.INFO):
            return response
        started = g.get("started")
        # The record made and handed to the handlers directly: Logger.info would also walk the
        # stack to name the caller, which this line never shows (a few microseconds a request).
        access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, json.dumps({
            "trace_id": telemetry.current_trace_id(),
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else None,
            # what was asked for, also where no route matched (bounded: a client chooses it)
            "path": request.path[:200],
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "caller": g.get("caller"),
        }), None, None))
        return response


def register_shared_cache_headers(app: Flask) -> None:
    """Every response says `Vary: Origin`: flask-cors adds its CORS headers only for a request with
    an allowed Origin, so a response differs by Origin whether or not this one carried any, and a
    shared cache must not give the frontend a copy made for a request without them. And
    `X-Content-Type-Options: nosniff`: a browser takes the JSON as JSON, never as a page."""

    @app.after_request
    def headers(response: Response) -> Response:
        if "Vary" in response.headers:
            response.vary.add("Origin")  # merged into what is there, as HTTP lists are
        else:
            response.headers["Vary"] = "Origin"  # the usual case, without parsing a header set
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def answer_simple_cors_requests_directly(app: Flask, frontend_origin: str) -> None:
    """flask-cors works out its headers anew for every response: its after-request hook matches
    the path against its resources and the Origin against its origins. For a request that is not
    a preflight, they depend only on the Origin (and on a private-network request header), so the
    headers it gives a request from the frontend and a request without an Origin are taken from
    flask-cors itself once, at start, and added directly; any other request (a preflight, another
    origin) still goes through flask-cors. The headers are the same, byte for byte
    (`tests/fast/test_routes.py` compares them)."""
    from flask_cors.core import ACL_ORIGIN, ACL_REQUEST_HEADER_PRIVATE_NETWORK, FLASK_CORS_EVALUATED

    hooks = app.after_request_funcs[None]
    [at] = [i for i, hook in enumerate(hooks) if hook.__name__ == "cors_after_request"]
    flask_cors_hook = hooks[at]
    known: dict[str | None, list[tuple[str, str]]] = {}
    for origin in (None, frontend_origin):
        with app.test_request_context("/", headers={"Origin": origin} if origin else {}):
            known[origin] = list(flask_cors_hook(Response()).headers.items())
    blank = list(Response().headers.items())
    known = {origin: [h for h in headers if h not in blank] for origin, headers in known.items()}

    def cors_after_request(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if (request.method == "OPTIONS" or origin not in known
                or ACL_REQUEST_HEADER_PRIVATE_NETWORK in request.headers):
            return flask_cors_hook(response)
        if response.headers.get(ACL_ORIGIN) or hasattr(response, FLASK_CORS_EVALUATED):
            return response  # as flask-cors: evaluated already
        for name, value in known[origin]:
            response.headers.add(name, value)
        return response

    cors_after_request.__wrapped__ = flask_cors_hook  # type: ignore[attr-defined]
    hooks[at] = cors_after_request


def answer_preflights_of_unknown_routes(app: Flask) -> None:
    """A browser's CORS preflight to a path with no route gets the same answer as one to a known
    route (flask-cors adds its headers), so that the request itself then reaches us and the
    frontend reads our 404 instead of a CORS error."""

    @app.before_request
    def preflight() -> Response | None:
        if (request.method == "OPTIONS" and request.url_rule is None
                and "Access-Control-Request-Method" in request.headers):
            return app.make_default_options_response()
        return None


class CompactJSON(DefaultJSONProvider):
    """Flask's JSON, byte for byte (compact, ASCII-escaped, keys in their order, a newline after),
    with the response's encoder made once: `json.dumps` with options builds a new encoder on
    every call. Request bodies are still read by Flask's own parser (a lone surrogate stays a
    422)."""

    sort_keys = False

    def __init__(self, app: Flask):
        super().__init__(app)
        self._encoder = json.JSONEncoder(default=self.default, ensure_ascii=self.ensure_ascii,
                                         sort_keys=self.sort_keys, separators=(",", ":"))

    def response(self, *args: object, **kwargs: object) -> Response:
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)  # indented: as Flask makes it
        return self._app.response_class(f"{self._encoder.encode(self._prepare_response_obj(args, kwargs))}\n",
                                        mimetype=self.mimetype)


def refuse_to_start(reason: str) -> NoReturn:
    """One line, and no worker: gunicorn's master stops on exit code 3 ("worker failed to boot")
    instead of respawning the worker."""
    log.critical("cruddur: refusing to start%s", reason)
    raise SystemExit(3)


def refuse_half_configured(settings: Settings) -> None:
    """In AWS, an API without its cursor secret or user pool would start and then fail every
    request (or sign cursors no other process accepts): refuse to start instead, in one line."""
    missing = settings.missing_for_aws()
    if missing:
        refuse_to_start(f" in AWS (no endpoint override) without {', '.join(missing)}")


def create_app(settings: Settings | None = None, parts: Parts | None = None,
               span_exporter: object | None = None) -> Flask:
    """Build the app. It owns its parts (services/bootstrap.py): the PostgreSQL pool, the
    DynamoDB client and caches. Traced when OTEL_EXPORTER_OTLP_ENDPOINT is set (or, in tests,
    into `span_exporter`)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if settings is None:
        try:
            settings = config.load()
        except config.ConfigError as error:
            refuse_to_start(f": {error}")
    refuse_half_configured(settings)
    app = Flask(__name__)
    app.json = CompactJSON(app)
    # before the parts: their clients and connections are then made instrumented
    app.extensions["tracing"] = telemetry.setup(app, settings.otlp_endpoint, span_exporter)
    if settings.trusted_proxy_hops:
        # Believe that many proxies' X-Forwarded-* (werkzeug takes the last N values, the ones
        # our own proxies appended), so the client-facing scheme and host are known.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]
    app.config["PUBLIC_URL"] = settings.public_url
    app.config["CRUDDUR_FRONTEND"] = settings.frontend
    app.config["TRUSTED_PROXY_HOPS"] = settings.trusted_proxy_hops
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if parts is None:
        parts = Parts.from_settings(settings)
        # close the pool before the interpreter goes: its threads (greenlets under gevent) must
        # not be left to a finaliser at exit
        atexit.register(parts.db.close)
    app.extensions["parts"] = parts
    # what gunicorn.conf.py ends on shutdown: streams would otherwise hold the worker till killed
    app.extensions["live_events"] = parts.live
    CORS(app, origins=[settings.frontend_url],
         allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
         expose_headers=["Link", "Retry-After", "X-Error-Detail"],
         # every method the contract's routes use (the final frontend's PUT among them)
         methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    answer_simple_cors_requests_directly(app, settings.frontend_url)
    for module in (health, messages, users, activities, events, avatars, blocks):
        app.register_blueprint(module.bp)
    if settings.metrics_enabled:
        app.add_url_rule("/api/_metrics", "metrics",
                         lambda: jsonify({**metrics.snapshot(), "streams_open": parts.live.open_streams()}))
    register_errors(app)
    register_access_log(app)
    register_shared_cache_headers(app)
    answer_preflights_of_unknown_routes(app)
    return app
