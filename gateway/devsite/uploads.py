"""Browser uploads on the emulated site (seed 003): ``photo/get-upload-token`` pre-authorises
an upload (level write), the browser posts the file to ``photo/redeem-upload-token``
(multipart, no OAuth), and 23 sends the browser back to ``return_url`` with ``upload_token``,
``domain`` and the new video's ``photo_id``, ``tree_id``, ``token`` (or ``error_message``).
``photo/list?upload_token=`` lists what a token uploaded. A token works ``max_uploads`` times
within ``valid_minutes``; a spent or expired one gets 23's plain, unstyled error."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from gateway.devsite.catalog import Photo
from gateway.devsite.site import ApiFailure, EmulatedSite

MAX_FILE = 64 * 1024 * 1024


@dataclass
class UploadToken:
    title: str
    description: str
    albums: tuple[int, ...]
    tags: tuple[str, ...]
    publish: bool
    valid_until: int
    max_uploads: int
    return_url: str
    uses: int = 0
    photo_ids: list[int] = field(default_factory=list)


def get_upload_token(site: EmulatedSite, p: dict[str, str], level: str) -> tuple[str, Any]:
    minutes = _bounded(p.get("valid_minutes", "180"), 15, 1440, "valid_minutes")
    most = _bounded(p.get("max_uploads", "1"), 1, 100, "max_uploads")
    albums = tuple(int(a) for a in p.get("album_id", "").split(",") if a.strip().isdigit())
    token = secrets.token_hex(20)
    upload = UploadToken(
        title=p.get("title", ""),
        description=p.get("description", ""),
        albums=albums,
        tags=tuple(p.get("tags", "").split()),
        publish=p.get("publish", "1") not in ("0", "f", "false"),
        valid_until=int(time.time()) + minutes * 60,
        max_uploads=most,
        return_url=p.get("return_url", ""),
    )
    with site.state.lock:
        site.state.uploads[token] = upload
    typed = p.get("_api2") == "1"
    return "uploadtoken", {
        "upload_token": token,
        "title": upload.title,
        "description": upload.description,
        "album_id": (albums[0] if albums else 0) if typed else ",".join(map(str, albums)),
        "tags": " ".join(upload.tags),
        "publish": "t" if upload.publish else "f",
        "valid_minutes": str(minutes),
        "valid_until": str(upload.valid_until),
        "max_uploads": str(most),
        "return_url": upload.return_url,
        "background_return_p": False,
    }


def uploaded_with(site: EmulatedSite, token: str) -> list[Photo]:
    with site.state.lock:
        upload = site.state.uploads.get(token)
        ids = list(upload.photo_ids) if upload else []
        return [site.photos[i] for i in ids if i in site.photos]


def redeem_upload_token(site: EmulatedSite) -> BaseResponse:
    """The browser's multipart post: a new video, then 23's 301 back to ``return_url``."""
    token = request.form.get("upload_token", "")
    with site.state.lock:
        upload = site.state.uploads.get(token)
        usable = (
            upload is not None
            and upload.uses < upload.max_uploads
            and upload.valid_until > time.time()
        )
        if usable and upload is not None:
            upload.uses += 1
    if not usable or upload is None:
        return Response(
            "The upload token is invalid, consumed or expired.", 403, mimetype="text/plain"
        )
    file = request.files.get("file")
    back = {"upload_token": token, "domain": request.host}
    if file is None or not file.filename:
        return _back(upload, back | {"error_message": "No file was uploaded."})
    data = file.read(MAX_FILE + 1)
    if not data or len(data) > MAX_FILE:
        return _back(upload, back | {"error_message": "The file could not be processed."})
    with site.state.lock:
        photo_id = max(site.photos, default=0) + 1
        photo = Photo(
            photo_id,
            7900,
            upload.title or file.filename,
            published=upload.publish,
            albums=upload.albums,
            tags=upload.tags,
        )
        site.photos[photo_id] = photo
        upload.photo_ids.append(photo_id)
    found = {"photo_id": str(photo_id), "tree_id": str(photo.tree_id), "token": photo.token}
    return _back(upload, back | found)


def _back(upload: UploadToken, params: dict[str, str]) -> BaseResponse:
    if not upload.return_url:
        return Response("ok", 200, mimetype="text/plain")
    joiner = "&" if "?" in upload.return_url else "?"
    return redirect(upload.return_url + joiner + urlencode(params), code=301)


def _bounded(raw: str, low: int, high: int, name: str) -> int:
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiFailure("invalid_input", f"{name} must be between {low} and {high}.")
    return int(raw)
