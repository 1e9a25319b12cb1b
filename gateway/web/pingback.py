"""``POST /pingback/<site>[/<key>]``: 23's unsigned change notice. A hint to re-read, never
data.

With the site's ``pingback_key`` set, only ``/pingback/<site>/<key>`` is accepted (the key
compared in constant time); the bare URL and a wrong key are 404 before anything is read or
called. Without a key, the bare URL works as before: each sender is rate-limited, the
re-reads it can cause are budgeted per site (``Catalogue.refresh``), and however often the same
video is pinged within ``REPEAT_WINDOW`` after a re-read, it costs one more re-read at the end
of that window (so a change made between two pingbacks is still seen); meanwhile the video is
"ask 23 on use", so a visitor never gets facts older than the last pingback.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, jsonify, request

from gateway.clientip import client_bucket
from gateway.errors import BadRequest, NotFound
from gateway.settings import SiteSettings
from gateway.store import StoreUnavailable
from gateway.web.current import photo_id_or_400, runtime, site_or_404, visitor_ip

bp = Blueprint("pingback", __name__)
log = logging.getLogger("gateway.pingback")

PINGBACKS_PER_SECOND = 20.0  # per site and sender: enough for 23, too few to bust the cache
REPEAT_WINDOW = 1.0  # seconds: the same video pinged again (no key) costs no second re-read


@bp.post("/pingback/<site_name>")
def pingback(site_name: str) -> Response:
    site = site_or_404(site_name)
    if site.pingback_key.get_secret_value():
        raise NotFound()  # only the keyed URL: no 23 call for a guess
    return _received(site, keyed=False)


@bp.post("/pingback/<site_name>/<key>")
def keyed_pingback(site_name: str, key: str) -> Response:
    site = site_or_404(site_name)
    expected = site.pingback_key.get_secret_value()
    if not expected or not hmac.compare_digest(key.encode(), expected.encode()):
        raise NotFound()
    return _received(site, keyed=True)


def _seen_within_window(key: str) -> bool:
    try:
        return not runtime().store.add(f"pingback-seen:{key}", 1, ttl=REPEAT_WINDOW)
    except StoreUnavailable:
        return False  # re-read now, as without the window


def _first_repeat(key: str) -> bool:
    try:
        return runtime().store.add(f"pingback-again:{key}", 1, ttl=REPEAT_WINDOW)
    except StoreUnavailable:
        return False


def _received(site: SiteSettings, keyed: bool) -> Response:
    svc = runtime()
    sender = client_bucket(visitor_ip())
    svc.limiter.per_second(f"pingback:{site.name}:{sender}", PINGBACKS_PER_SECOND)
    # 23's example puts the fields in the query string of a POST; accept the form body too.
    kind = request.values.get("type", "")
    raw_id = request.values.get("photo_id", "")
    if kind != "photo":
        raise BadRequest("type must be 'photo'.", code="invalid_type")
    photo_id = photo_id_or_400(raw_id, "photo_id must be a positive whole number.")
    cache = svc.site(site.name).cache
    repeated = not keyed and _seen_within_window(f"{site.name}:{photo_id}")
    cache.invalidate(photo_id, reread=not repeated)  # a repeat: "ask 23 on use" until...
    if repeated and _first_repeat(f"{site.name}:{photo_id}"):
        # ...the repeats of a window share one trailing re-read, so the last change lands.
        cache.invalidate_later(photo_id, REPEAT_WINDOW)
    log.info("pingback", extra={"site": site.name, "photo_id": photo_id, "repeat": repeated})
    return jsonify({"status": "ok"})
