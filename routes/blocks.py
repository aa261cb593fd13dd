"""Blocks: whom the caller keeps from messaging them."""
from __future__ import annotations

from flask import Blueprint, jsonify

from routes.http import caller, parts
from services.blocks import Blocks, BlockUser, UnblockUser

bp = Blueprint("blocks", __name__)


@bp.put("/api/blocks/@<handle>")
def block(handle: str):
    user = caller()
    app = parts()
    return jsonify(BlockUser.run(app.blocks, app.users, user, handle))


@bp.delete("/api/blocks/@<handle>")
def unblock(handle: str):
    user = caller()
    app = parts()
    return jsonify(UnblockUser.run(app.blocks, app.users, user, handle))


@bp.get("/api/blocks")
def blocks():
    user = caller()
    return jsonify(Blocks.run(parts().blocks, user))
