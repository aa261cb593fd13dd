"""Avatar uploads, at the path the final frontend calls on its API gateway URL (locally, the
backend itself)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from routes.http import caller, json_body, parts
from services.avatars import AvatarUploadUrl

bp = Blueprint("avatars", __name__)


@bp.post("/avatars/key_upload")
def key_upload():
    user = caller()
    app = parts()
    return jsonify(AvatarUploadUrl.run(app.avatars, app.users, user, json_body()))
