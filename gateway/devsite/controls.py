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
    options = current().options
    with state.lock:
        state.calls.clear()
        state.mode = "ok"
        state.page_max = options.page_max
        state.bearer_lifetime = options.bearer_lifetime
        state.moves.clear()
        state.uploads.clear()
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


@bp.post("/_devsite/options")
def set_options() -> Response:
    """``page_max`` (23's pagination_max) and ``bearer_lifetime`` (seconds) until a reset."""
    state = current().state
    body = request.get_json(silent=True) or {}
    wanted = {k: body[k] for k in ("page_max", "bearer_lifetime") if k in body}
    if set(body) - set(wanted) or not all(isinstance(v, int) and v > 0 for v in wanted.values()):
        message = json.dumps({"error": "page_max and/or bearer_lifetime, positive integers"})
        return Response(message, 400, mimetype="application/json")
    with state.lock:
        for key, value in wanted.items():
            setattr(state, key, value)
    return Response("{}", mimetype="application/json")


@bp.post("/_devsite/listing-moves")
def listing_moves() -> Response:
    """A listing that moves while it is read: once a photo/list listing has served page
    ``after_page``, delete the ``delete`` ids and add ``add`` new videos (ids after the
    highest)."""
    site = current()
    body = request.get_json(silent=True) or {}
    after, delete, add = body.get("after_page"), body.get("delete", []), body.get("add", 0)
    valid = isinstance(after, int) and after > 0 and isinstance(add, int) and add >= 0
    if not valid or not all(isinstance(i, int) for i in delete):
        message = json.dumps({"error": "after_page (int), delete ([ids]), add (count)"})
        return Response(message, 400, mimetype="application/json")
    with site.state.lock:
        top = max(site.photos, default=0)
        new = [Photo(top + 1 + i, 7999, f"Uploaded during a sync {i + 1}") for i in range(add)]
        site.state.moves.append({"after_page": after, "delete": delete, "add": new})
    return Response(json.dumps({"added": [p.photo_id for p in new]}), mimetype="application/json")
