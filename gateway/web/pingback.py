"""``POST /pingback/<site>``: 23's unsigned change notice. A hint to forget, never data."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from gateway.clientip import client_bucket
from gateway.errors import BadRequest
from gateway.web.current import photo_id_or_400, runtime, site_or_404, visitor_ip

bp = Blueprint("pingback", __name__)
log = logging.getLogger("gateway.pingback")

PINGBACKS_PER_SECOND = 20.0  # per site and sender: enough for 23, too few to bust the cache


@bp.post("/pingback/<site_name>")
def pingback(site_name: str) -> Response:
    site = site_or_404(site_name)
    svc = runtime()
    sender = client_bucket(visitor_ip())
    svc.limiter.per_second(f"pingback:{site.name}:{sender}", PINGBACKS_PER_SECOND)
    # 23's example puts the fields in the query string of a POST; accept the form body too.
    kind = request.values.get("type", "")
    raw_id = request.values.get("photo_id", "")
    if kind != "photo":
        raise BadRequest("type must be 'photo'.", code="invalid_type")
    photo_id = photo_id_or_400(raw_id, "photo_id must be a positive whole number.")
    svc.site(site.name).cache.invalidate(photo_id)
    log.info("pingback", extra={"site": site.name, "photo_id": photo_id})
    return jsonify({"status": "ok"})
