"""Test controls of the emulated site: its call log, a reset, and fault modes."""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from gateway.devsite.site import MODES, current

bp = Blueprint("devsite_controls", __name__)


@bp.get("/_devsite/calls")
def calls() -> Response:
    state = current().state
    with state.lock:
        return Response(json.dumps(state.calls), mimetype="application/json")


@bp.post("/_devsite/reset")
def reset() -> Response:
    state = current().state
    with state.lock:
        state.calls.clear()
        state.mode = "ok"
    return Response("{}", mimetype="application/json")


@bp.post("/_devsite/mode")
def mode() -> Response:
    state = current().state
    body = request.get_json(silent=True) or {}
    if body.get("mode") not in MODES:
        message = json.dumps({"error": "mode must be " + "|".join(MODES)})
        return Response(message, 400, mimetype="application/json")
    state.mode = body["mode"]
    state.hang_seconds = float(body.get("seconds", state.hang_seconds))
    return Response("{}", mimetype="application/json")
