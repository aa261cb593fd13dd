"""Probes.

- GET /api/health-check (liveness, the contract's): 200 when this process serves requests and
  PostgreSQL answers. It does not ask DynamoDB: a process restarted because the table is
  unreachable would come back to the same table, so a store outage must not restart the fleet.
- GET /api/ready (readiness): 200 when PostgreSQL and the messages table both answer, else 503
  `["not_ready"]` with which failed; a load balancer sends traffic only to a ready process.
  Checked at most once every few seconds per process (services/readiness.py).
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from lib.db import DatabaseUnavailable
from routes.http import error_response, parts
from services.readiness import Readiness

bp = Blueprint("health", __name__)


@bp.get("/api/health-check")
def health_check():
    if not parts().db.ping():
        raise DatabaseUnavailable(reason="ping failed")
    return jsonify({"success": True})


@bp.get("/api/ready")
def ready():
    app = parts()
    checks = Readiness.run(app.db.ping, app.table_probe.table_active, app.readiness)
    if all(checks.values()):
        return jsonify({"ready": True, "checks": checks})
    failed = ", ".join(name for name, ok in checks.items() if not ok)
    return error_response(503, ["not_ready"], f"not answering: {failed}", {"Retry-After": "5"})
