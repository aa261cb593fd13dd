"""GET /api/health-check: 200 when the API can serve."""
from __future__ import annotations

from flask import Blueprint, jsonify

from lib.db import DatabaseUnavailable
from routes.http import backend

bp = Blueprint("health", __name__)


@bp.get("/api/health-check")
def health_check():
    if not backend().db.ping():
        raise DatabaseUnavailable(reason="ping failed")
    return jsonify({"success": True})
