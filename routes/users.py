"""Users' public cards."""
from __future__ import annotations

from flask import Blueprint, jsonify

from routes.http import parts
from services.users_short import UsersShort

bp = Blueprint("users", __name__)


@bp.get("/api/users/@<handle>/short")
def users_short(handle: str):
    return jsonify(UsersShort.run(parts().users, handle))
