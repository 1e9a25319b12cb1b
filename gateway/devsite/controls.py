"""Test controls of the emulated site: its call log, a reset, and fault modes."""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any

from flask import Blueprint, Response, request

from gateway.devsite.catalog import Photo
from gateway.devsite.site import MODES, current

bp = Blueprint("devsite_controls", __name__)


@bp.get("/_devsite/calls")
def calls() -> Response:
    state = current().state
    with state.lock:
        return Response(json.dumps(state.calls), mimetype="application/json")


@bp.get("/_devsite/photos")
def list_photos() -> Response:
    """The catalogue as the tests see it (unsigned, test control): ids, lengths, channels,
    tags, published and protected."""
    shown = [
        {
            "photo_id": p.photo_id,
            "title": p.title,
            "video_length": p.video_length,
            "albums": list(p.albums),
            "tags": list(p.tags),
            "published": p.published,
            "protected": bool(p.protected_token),
        }
        for p in current().photo_list()
    ]
    return Response(json.dumps(shown), mimetype="application/json")


@bp.post("/_devsite/reset")
def reset() -> Response:
    state = current().state
    with state.lock:
        state.calls.clear()
        state.mode = "ok"
    current().restore_photos()
    return Response("{}", mimetype="application/json")


_EDITABLE = {"title", "published", "video_length", "albums", "tags", "tree_id", "protected_token"}


@bp.post("/_devsite/photos")
def put_photo() -> Response:
    """Add or change one video (tests of the catalogue sync and pingbacks). ``new_token``
    gives it a fresh token, as re-uploading does on 23."""
    site = current()
    body: dict[str, Any] = request.get_json(silent=True) or {}
    photo_id = body.get("photo_id")
    unknown = set(body) - _EDITABLE - {"photo_id", "new_token"}
    if not isinstance(photo_id, int) or photo_id <= 0 or unknown:
        message = json.dumps({"error": f"photo_id (int) and {sorted(_EDITABLE)}"})
        return Response(message, 400, mimetype="application/json")
    changes: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in body.items() if k in _EDITABLE
    }
    if body.get("new_token"):
        changes["token"] = secrets.token_hex(16)
    with site.state.lock:
        old = site.photos.get(photo_id)
        if old is None:
            tree_id, title = int(changes.pop("tree_id", 7900)), changes.pop("title", "New video")
            photo = Photo(photo_id, tree_id, str(title), **changes)
        else:
            photo = dataclasses.replace(old, **changes)
        site.photos[photo_id] = photo
    return Response(json.dumps({"token": photo.token}), mimetype="application/json")


@bp.delete("/_devsite/photos/<int:photo_id>")
def delete_photo(photo_id: int) -> Response:
    site = current()
    with site.state.lock:
        site.photos.pop(photo_id, None)
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
