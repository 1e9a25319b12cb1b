"""``GET /protection/<site>``: the 23 player's custom protection endpoint (JSON-P).

The player loads this as a script and expects ``callback({...});``. The callback name is
checked before anything else and is the only input that reaches the body; the JSON is escaped
so it stays inert in any context. After the callback check every answer is the callback form
(a script with a 4xx status would never run, and the player would wait forever); a 23 outage
keeps its 502/504 status with the error form as the body.

Any page may include a ``<script>`` from here, and the browser sends it the visitor's
cookies; so a protected token is given only when the Referer is a page of this video site (or
one of its ``return_hosts``), whatever proves the visitor (Lax cookie, player cookie, a proxy's
headers). A sibling subdomain's page gets "Sign in", as a stranger would.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, request
from werkzeug.wrappers import Response

from gateway import metrics
from gateway.errors import BadRequest, GatewayError, UpstreamError
from gateway.logs import audit
from gateway.redirects import is_site_page
from gateway.settings import SiteSettings
from gateway.twentythree.coerce import photo_id
from gateway.web.current import site_or_404
from gateway.web.links import visitor_photo
from gateway.web.visitor import NotSignedIn, allowed_visitor

bp = Blueprint("protection", __name__)

CALLBACK_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.]{0,63}")
# Escaped inside the JSON so the body cannot close a tag or break a line in any parser.
_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


class InvalidCallback(BadRequest, code="invalid_callback"):
    """callback must be a plain JavaScript name (letters, digits, _ $ .)."""


class NotProtectable(BadRequest, code="invalid_object"):
    """Only videos (object_type=photo) with a numeric object_id are answered here."""


class NotProtected(BadRequest, code="not_protected"):
    """This video is not protected; it plays without a protection token."""


def jsonp(callback: str, payload: dict[str, Any], status: int = 200) -> Response:
    text = _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], json.dumps(payload))
    # The leading comment keeps the body from starting with attacker-chosen bytes.
    response = Response(f"/**/{callback}({text});", status, mimetype="application/javascript")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/protection/<site_name>")
def protection(site_name: str) -> Response:
    callback = request.args.get("callback", "")
    if not CALLBACK_RE.fullmatch(callback):
        raise InvalidCallback()  # JSON 400: nothing of the request is echoed
    site = site_or_404(site_name)
    try:
        payload = _protected_token(site)
        status, outcome = 200, "ok"
    except UpstreamError as exc:
        payload = {"status": "error", "message": exc.message}
        status, outcome = exc.status, exc.code
    except GatewayError as exc:
        payload = {"status": "error", "message": exc.message}
        status, outcome = 200, exc.code
    metrics.PROTECTION_ANSWERS.labels(site.name, outcome).inc()
    return jsonp(callback, payload, status)


def _protected_token(site: SiteSettings) -> dict[str, Any]:
    object_id = photo_id(request.args.get("object_id", ""))
    if request.args.get("object_type", "photo") != "photo" or object_id is None:
        raise NotProtectable()
    if not is_site_page(request.referrer, site):
        raise NotSignedIn()  # not asked from the video site's own page: a stranger's answer
    identity = allowed_visitor(site, player=True)
    info = visitor_photo(site, object_id, identity)
    if not info.protected_token:
        raise NotProtected()
    audit(
        "protected_token_given",
        site=site.name,
        email=identity.email,
        provider=identity.provider,
        photo_ids=[info.photo_id],
    )
    return {
        "status": "ok",
        "protectedtoken": {
            "object_id": str(info.photo_id),
            "object_type": "photo",
            "protected_token": info.protected_token,
        },
    }
