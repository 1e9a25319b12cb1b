"""``POST /api/v1/sites/<site>/tokens``: backends mint time-limited tokens with a bearer key."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, request

from gateway import metrics
from gateway.errors import BadRequest, Forbidden, UnsupportedMediaType
from gateway.logs import audit
from gateway.web.context import photo_id_or_400, services, site_or_404

bp = Blueprint("tokens", __name__)

MAX_IDS = 100
LONGEST_TTL = 366 * 86400  # beyond any max_ttl: such a request is a mistake, not a wish
DEFAULT_TTL = 3600
_ALLOWED_KEYS = frozenset({"photo_ids", "ttl", "expire"})


def _bad(code: str, message: str) -> BadRequest:
    return BadRequest(message, code=code)


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"invalid_{name}", f"{name} must be a whole number of seconds.")
    return value


def parse_mint_request(body: Any, max_ttl: int, now: int) -> tuple[list[int], int]:
    """Validate a mint body; return (photo ids, expiry before bucketing). ttl and expire are
    capped by the key's max_ttl; absurd values (past, or beyond a year) are refused."""
    if not isinstance(body, dict):
        raise _bad("invalid_body", "The body must be a JSON object.")
    unknown = set(body) - _ALLOWED_KEYS
    if unknown:
        raise _bad("unknown_field", "Unknown field(s): " + ", ".join(sorted(unknown)[:5]))
    ids = body.get("photo_ids")
    if not isinstance(ids, list) or not ids:
        raise _bad("invalid_photo_ids", "photo_ids must be a non-empty list.")
    if len(ids) > MAX_IDS:
        raise _bad("too_many_photo_ids", f"At most {MAX_IDS} photo ids per call.")
    photo_ids = [photo_id_or_400(v, "Every photo id must be a positive whole number.") for v in ids]
    if "ttl" in body and "expire" in body:
        raise _bad("ttl_and_expire", "Give ttl or expire, not both.")
    if "expire" in body:
        ttl = _whole("expire", body["expire"]) - now
        if ttl <= 0:
            raise _bad("invalid_expire", "expire must be in the future (Unix seconds, UTC).")
    else:
        ttl = _whole("ttl", body.get("ttl", DEFAULT_TTL))
        if ttl <= 0:
            raise _bad("invalid_ttl", "ttl must be a positive number of seconds.")
    if ttl > LONGEST_TTL:
        raise _bad("ttl_too_long", "Tokens can live at most one year; ask for less.")
    return photo_ids, now + min(ttl, max_ttl)


@bp.post("/api/v1/sites/<site_name>/tokens")
def mint(site_name: str) -> Response:
    svc = services()
    key = svc.keyring.authenticate(request.headers.get("Authorization"))
    site = site_or_404(site_name)
    if site.name not in key.sites:
        raise Forbidden("This API key may not mint tokens for this site.", code="site_not_allowed")
    svc.limiter.per_second(f"key:{key.name}", key.rate_limit)
    if request.mimetype != "application/json":
        raise UnsupportedMediaType()
    try:
        body = current_app.json.loads(request.get_data(cache=False))
    except ValueError:
        raise _bad("invalid_json", "The body is not valid JSON.") from None
    now = int(time.time())
    photo_ids, expire = parse_mint_request(body, key.max_ttl, now)
    minter = svc.minters[site.name]
    expire = minter.expire_after(expire - now, now)
    minted = minter.mint(photo_ids, expire)
    granted = minted.photo_ids
    metrics.TOKENS_MINTED.labels(site.name, "api").inc(len(granted))
    audit(  # one line per call, however many tokens
        "tokens_minted",
        via="api",
        api_key=key.name,
        site=site.name,
        photo_ids=granted,
        refused=minted.refused,
        expire=expire,
    )
    return Response(minted.json(), mimetype="application/json")
