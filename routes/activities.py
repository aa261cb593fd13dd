"""Cruddur's public posts ("cruds") and replies."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from routes.http import caller, json_body, page_response, parts
from services import validation
from services.activities import (CreateActivity, CreateReply, HomeActivities,
                                 NotificationsActivities, SearchActivities, ShowActivity, ShowStatus,
                                 UserActivities, UserProfile)

bp = Blueprint("activities", __name__)


def page_args() -> tuple[int, str | None]:
    return validation.limit(request.args.get("limit")), request.args.get("cursor")


@bp.get("/api/activities/home")
def home():
    # Everyone's: a token is not needed, and not read (a signed-out frontend sends "Bearer null").
    limit, cursor = page_args()
    app = parts()
    return page_response(*HomeActivities.run(app.activities, app.cursors, limit, cursor), limit)


@bp.get("/api/activities/notifications")
def notifications():
    # The week-5 frontend asks without a token: nobody's notifications, not an error.
    if "Authorization" not in request.headers:
        return jsonify([])
    user = caller()
    limit, cursor = page_args()
    app = parts()
    return page_response(*NotificationsActivities.run(app.activities, app.cursors, user, limit, cursor), limit)


@bp.get("/api/activities/search")
def search():
    limit, cursor = page_args()
    app = parts()
    term = request.args.get("term")
    return page_response(*SearchActivities.run(app.activities, app.cursors, term, limit, cursor), limit)


@bp.get("/api/activities/@<handle>")
def user_activities(handle: str):
    limit, cursor = page_args()
    app = parts()
    # one URL, two readers: a deployment serves one of them (CRUDDUR_FRONTEND)
    show = UserProfile if current_app.config["CRUDDUR_FRONTEND"] == "final" else UserActivities
    return page_response(*show.run(app.activities, app.users, app.cursors, handle, limit, cursor), limit)


@bp.get("/api/activities/@<handle>/status/<activity_uuid>")
def status(handle: str, activity_uuid: str):
    # the final frontend's crud page: public, as the crud itself is
    return jsonify(ShowStatus.run(parts().activities, handle, activity_uuid))


@bp.get("/api/activities/<activity_uuid>")
def show(activity_uuid: str):
    return jsonify(ShowActivity.run(parts().activities, activity_uuid))


@bp.post("/api/activities")
def create():
    user = caller()
    return jsonify(CreateActivity.run(parts().activities, user, json_body()))


@bp.post("/api/activities/<activity_uuid>/reply")
def reply(activity_uuid: str):
    user = caller()
    return jsonify(CreateReply.run(parts().activities, user, activity_uuid, json_body()))
