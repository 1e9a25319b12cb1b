"""``POST /api/v1/sites/<site>/tokens``: backends mint time-limited tokens with a bearer key.

This is the gateway's hot path, so it is a plain WSGI endpoint in front of Flask rather than
a Flask view: no request context, URL map, hooks or response object, which cost a Flask view
more than minting itself does. It keeps the same contract as every other endpoint: JSON
errors ``{"error": {"code", "message"}}``, request ids, security headers and request metrics
(those come from the middleware around it), one audit line per call.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import orjson

from gateway import metrics
from gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
)
from gateway.logs import audit
from gateway.services import Services
from gateway.twentythree.values import MAX_PHOTO_ID
from gateway.web.context import photo_id_or_400
from gateway.web.jsonprovider import loads
from gateway.web.observability import ROUTE_KEY

log = logging.getLogger("gateway.web")

MAX_IDS = 100
LONGEST_TTL = 366 * 86400  # beyond any max_ttl: such a request is a mistake, not a wish
DEFAULT_TTL = 3600
ROUTE = "/api/v1/sites/<site_name>/tokens"
_PATH_RE = re.compile(r"/api/v1/sites/([^/]+)/tokens")
_ALLOWED_KEYS = frozenset({"photo_ids", "ttl", "expire"})
_BAD_ID = "Every photo id must be a positive whole number."

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


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
    photo_ids = [
        v if type(v) is int and 0 < v <= MAX_PHOTO_ID else photo_id_or_400(v, _BAD_ID) for v in ids
    ]  # plain numbers (the usual case) are checked inline; the rest by the one id parser
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


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body: ``RequestBodies`` (around this endpoint) has read it already, whole
    and within the size limit, and given it a Content-Length."""
    length = environ.get("CONTENT_LENGTH") or "0"
    return bytes(environ["wsgi.input"].read(int(length))) if length.isdigit() else b""


class MintApi:
    """The mint endpoint, answering its one path before the Flask app sees the request."""

    def __init__(self, app: WsgiApp, services: Services) -> None:
        self.app = app
        self.services = services
        self._minted = {
            name: metrics.TOKENS_MINTED.labels(name, "api") for name in services.minters
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        match = _PATH_RE.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return self.app(environ, start_response)
        environ[ROUTE_KEY] = ROUTE
        headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise MethodNotAllowed(("POST",))
            status, body = 200, self.mint(match.group(1), environ)
        except GatewayError as error:
            status, body = error.status, orjson.dumps(error.to_dict())
            headers.extend(error.response_headers().items())
        except Exception as exc:
            log.error("unhandled error", exc_info=exc)
            status, body = GatewayError.status, orjson.dumps(GatewayError().to_dict())
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def mint(self, site_name: str, environ: dict[str, Any]) -> bytes:
        svc = self.services
        key = svc.keyring.authenticate(environ.get("HTTP_AUTHORIZATION"))
        site = svc.settings.sites.get(site_name)
        if site is None:
            raise NotFound("There is no such site.", code="no_such_site")
        if site.name not in key.sites:
            raise Forbidden(
                "This API key may not mint tokens for this site.", code="site_not_allowed"
            )
        svc.limiter.per_second(f"key:{key.name}", key.rate_limit)
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if mimetype != "application/json":
            raise UnsupportedMediaType()
        try:
            body = loads(read_body(environ))
        except ValueError:
            raise _bad("invalid_json", "The body is not valid JSON.") from None
        now = int(time.time())
        photo_ids, expire = parse_mint_request(body, key.max_ttl, now)
        minter = svc.minters[site.name]
        minted = minter.mint(photo_ids, minter.expire_after(expire - now, now))
        granted = minted.photo_ids
        self._minted[site.name].inc(len(granted))
        audit(  # one line per call, however many tokens
            "tokens_minted",
            via="api",
            api_key=key.name,
            site=site.name,
            photo_ids=granted,
            refused=minted.refused,
            expire=minted.expire,
        )
        return minted.json()
