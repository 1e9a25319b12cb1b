"""Browser uploads for signed-in staff (seed 003): ``/upload/<site>`` (the form, then the page
that posts the file straight to 23), ``/upload/<site>/done`` (23's unsigned callback,
confirmed with a signed call before anything is shown as uploaded) and, for backends,
``POST /api/v1/sites/<site>/uploads``.

An upload token is bound to whoever asked for it (their gateway session, or the person a
trusted proxy names) in the shared store, once: the callback is believed only for that
visitor, only for a video 23's own ``photo/list?upload_token=`` returns, and only once.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flask import Blueprint, jsonify, request, url_for
from werkzeug.wrappers import Response

from gateway.csrf import FormGuard
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.identity.base import Identity
from gateway.logs import audit
from gateway.policy import may_upload
from gateway.settings import SiteSettings, UploadSettings
from gateway.twentythree.uploads import Uploaded, UploadRequest, upload_token, uploaded_with
from gateway.web.current import runtime, site_or_404
from gateway.web.message_pages import message_page
from gateway.web.observability import PAGE_CSP
from gateway.web.visitor import current_session, private_page, signed_in_visitor

bp = Blueprint("uploads", __name__)

MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_TAGS = 20
_TAG_RE = re.compile(r"[\w-]{1,50}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9]{8,128}")
_MESSAGES = {  # 23's error_message -> the visitor's wording
    "no file": "No file reached the video site. Choose a video file and try again.",
    "processed": "The video site could not process that file. Try another format (MP4 or MOV).",
}


def _uploads(site: SiteSettings) -> UploadSettings:
    if site.uploads is None:
        raise NotFound("This video site takes no uploads here.", code="uploads_not_enabled")
    return site.uploads


def _binding_of(identity: Identity) -> str:
    """Who an upload token belongs to: this gateway session, or the person a trusted proxy
    names on every request."""
    session = current_session()
    if session is not None and session.identity.email == identity.email:
        return f"session:{session.id}"
    return f"person:{identity.provider}:{identity.email.lower()}"


def _pending_key(site: str, token: str) -> str:
    return f"upload:{site}:" + hashlib.sha256(token.encode()).hexdigest()


def _guard(site: str) -> FormGuard:
    svc = runtime()
    return FormGuard(f"upload:{site}", svc.settings.gateway.secret_keys, svc.cookies)


def _audit(event: str, site: SiteSettings, who: Identity, **fields: Any) -> None:
    audit(event, site=site.name, email=who.email, **fields)


def _uploader(site: SiteSettings) -> Identity:
    """The signed-in visitor who may upload here; a stranger is sent to sign in and back."""
    _uploads(site)
    identity = signed_in_visitor(site, f"/upload/{site.name}")
    decision = may_upload(site, identity, runtime().standing)
    if not decision.allowed:
        _audit("upload_refused", site, identity, reason=decision.code)
        raise Forbidden(decision.message, code=decision.code)
    return identity


@bp.get("/upload/<site_name>")
def form(site_name: str) -> Response:
    site = site_or_404(site_name)
    who = _uploader(site)
    return _form_page(site, who)


def _form_page(site: SiteSettings, who: Identity, error: str = "", status: int = 200) -> Response:
    uploads = _uploads(site)
    return private_page(
        "upload.html",
        status,
        site=site.name,
        email=who.email,
        albums=uploads.album_ids,
        csrf=_guard(site.name).token(_binding_of(who)),
        error=error,
        video_title=request.form.get("title", ""),
        description=request.form.get("description", ""),
        tags=request.form.get("tags", ""),
    )


@bp.post("/upload/<site_name>")
def start(site_name: str) -> Response:
    site = site_or_404(site_name)
    who = _uploader(site)
    binding = _binding_of(who)
    _guard(site.name).check_bound(request.form.get("csrf", ""), binding)
    uploads = _uploads(site)
    try:
        wanted = _request_from(request.form, uploads)
    except BadRequest as exc:
        return _form_page(site, who, exc.message, 400)
    done = url_for("uploads.done", site_name=site.name, _external=False)
    token = upload_token(
        runtime().site(site.name).client,
        wanted,
        return_url=runtime().settings.gateway.public_url + done,
    )
    record = {"who": binding, "email": who.email, "title": wanted.title}
    runtime().store.set(
        _pending_key(site.name, token.value), record, ttl=wanted.valid_minutes * 60 + 600
    )
    _audit("upload_token_issued", site, who, title=wanted.title, expire=token.valid_until)
    page = private_page("upload_file.html", site=site.name, video_title=wanted.title, token=token)
    # The page's one script (upload.js, the progress line) is the gateway's own file.
    page.headers["Content-Security-Policy"] = PAGE_CSP + "; script-src 'self'"
    return page


def _request_from(form: Any, uploads: UploadSettings) -> UploadRequest:
    title = str(form.get("title", "")).strip()
    if not title or len(title) > MAX_TITLE:
        raise BadRequest(f"Give the video a title (at most {MAX_TITLE} characters).")
    description = str(form.get("description", "")).strip()
    if len(description) > MAX_DESCRIPTION:
        raise BadRequest(f"The description may have at most {MAX_DESCRIPTION} characters.")
    tags = tuple(dict.fromkeys(str(form.get("tags", "")).replace(",", " ").split()))
    if len(tags) > MAX_TAGS or not all(_TAG_RE.fullmatch(t) for t in tags):
        raise BadRequest(f"Tags are words of letters, digits and '-' (at most {MAX_TAGS}).")
    album_id = _album(form.get("album_id", ""), uploads.album_ids)
    return UploadRequest(title, description, album_id, tags, uploads.publish, uploads.valid_minutes)


def _album(raw: Any, offered: tuple[int, ...]) -> int | None:
    if not offered:
        return None
    text = str(raw or "")
    if not text.isdigit() or int(text) not in offered:
        raise BadRequest("Choose one of the channels offered.")
    return int(text)


@bp.get("/upload/<site_name>/done")
def done(site_name: str) -> Response:
    """23's callback (a redirect of the visitor's browser, unsigned): believed only for the
    visitor the token was issued to, for a video 23's own signed listing returns, once."""
    site = site_or_404(site_name)
    who = _uploader(site)
    token = request.args.get("upload_token", "")
    pending = _pending(site, token, _binding_of(who)) if _TOKEN_RE.fullmatch(token) else None
    if pending is None:
        _audit("upload_refused", site, who, reason="unknown_upload")
        raise Forbidden("This upload was not started here by you.", code="upload_unknown")
    failure = request.args.get("error_message", "")
    if failure:
        _audit("upload_failed", site, who, reason=failure[:200])
        return message_page(422, "upload_failed", _visitor_wording(failure), site=site.name)
    video = _confirmed(site, token, request.args.get("photo_id", ""))
    if video is None or not _claimed(site, token):
        reason = "not_confirmed" if video is None else "replayed"
        _audit("upload_refused", site, who, reason=reason)
        raise Forbidden("The video site does not confirm this upload.", code="upload_unconfirmed")
    runtime().site(site.name).cache.remember(video.info)  # mintable at once, no lookup
    shown = video.title or str(pending.get("title", ""))
    _audit("upload", site, who, photo_id=video.info.photo_id, title=shown)
    return private_page("upload_done.html", site=site.name, video_title=shown, url=video.url)


def _pending(site: SiteSettings, token: str, binding: str) -> dict[str, Any] | None:
    """The pending upload for this token, if this visitor started it."""
    pending = runtime().store.get(_pending_key(site.name, token))
    if not isinstance(pending, dict) or pending.get("who") != binding:
        return None
    return pending


def _claimed(site: SiteSettings, token: str) -> bool:
    """Use the pending upload up: True once, for the first confirmed callback only."""
    key = _pending_key(site.name, token)
    store = runtime().store
    if not store.add(key + ":claimed", 1, ttl=600):
        return False  # a replayed callback
    store.delete(key)
    return True


def _confirmed(site: SiteSettings, token: str, photo_id: str) -> Uploaded | None:
    made = uploaded_with(runtime().site(site.name).client, token)
    if photo_id:
        made = [v for v in made if str(v.info.photo_id) == photo_id]
    return made[0] if made else None


def _visitor_wording(error: str) -> str:
    lowered = error.lower()
    for clue, wording in _MESSAGES.items():
        if clue in lowered:
            return wording
    return "The video site could not take the upload. Please try again."


# ---------------------------------------------------------------- backends


@bp.post("/api/v1/sites/<site_name>/uploads")
def api_upload(site_name: str) -> Response:
    """For a backend's own editor: an upload token it posts the file with itself."""
    key = runtime().keyring.authenticate(request.headers.get("Authorization"))
    site = site_or_404(site_name)
    if site.name not in key.sites or not key.uploads:
        raise Forbidden("This API key may not start uploads here.", code="uploads_not_allowed")
    uploads = _uploads(site)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_body")
    unknown = set(body) - {"title", "description", "album_id", "tags"}
    if unknown:
        raise BadRequest("Unknown field(s): " + ", ".join(sorted(unknown)), code="unknown_field")
    tags = body.get("tags", "")
    form = {**body, "tags": " ".join(map(str, tags)) if isinstance(tags, list) else str(tags)}
    try:
        wanted = _request_from(form, uploads)
    except BadRequest as exc:
        raise BadRequest(exc.message, code="invalid_upload") from None
    token = upload_token(runtime().site(site.name).client, wanted)
    issued = {"title": wanted.title, "expire": token.valid_until}
    audit("upload_token_issued", site=site.name, api_key=key.name, **issued)
    return jsonify(
        {
            "upload_token": token.value,
            "form_action": token.form_action,
            "valid_until": token.valid_until,
        }
    )
