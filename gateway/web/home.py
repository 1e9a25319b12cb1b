"""The gateway's own landing page: what this is, with no configuration details."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> Response:
    return Response(render_template("home.html"), mimetype="text/html")
