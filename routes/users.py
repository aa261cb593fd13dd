"""Users' public cards, and the caller's own profile."""
from __future__ import annotations

from flask import Blueprint, jsonify

from routes.http import caller, json_body, parts
from services.profile import UpdateProfile
from services.users_short import UsersShort

bp = Blueprint("users", __name__)


@bp.get("/api/users/@<handle>/short")
def users_short(handle: str):
    return jsonify(UsersShort.run(parts().users, handle))


@bp.route("/api/profile/update", methods=["PUT", "POST"])
def update_profile():
    user = caller()
    app = parts()
    return jsonify(UpdateProfile.run(app.users, app.names, app.known_users, user, json_body()))
