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
from dataclasses import dataclass
from typing import Any

from gateway import metrics, tracing
from gateway.emails import email_domain
from gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    TooManyRequests,
    UnsupportedMediaType,
    error_json,
    json_error_headers,
    status_line,
)
from gateway.identity.base import Identity
from gateway.logs import audit
from gateway.policy import rules_decision
from gateway.runtime import GatewayRuntime
from gateway.settings import ApiKeySettings, SiteSettings
from gateway.store import StoreUnavailable
from gateway.twentythree.cache import PhotoInfo
from gateway.twentythree.coerce import MAX_PHOTO_ID
from gateway.twentythree.minting import Admission, Refused
from gateway.web.current import photo_id_or_400
from gateway.web.fastpath import Environ, FastPath, StartResponse, WsgiApp
from gateway.web.jsonprovider import loads
from gateway.web.observability import ROUTE_KEY

log = logging.getLogger("gateway.web")

MAX_IDS = 100
LONGEST_TTL = 366 * 86400  # beyond any max_ttl: such a request is a mistake, not a wish
DEFAULT_TTL = 3600
ROUTE = "/api/v1/sites/<site_name>/tokens"
_ALLOWED_KEYS = frozenset({"photo_ids", "ttl", "expire", "cover_playback", "visitor"})
_VISITOR_KEYS = frozenset({"email", "groups"})
_BAD_ID = "Every photo id must be a positive whole number."


def _bad(code: str, message: str) -> BadRequest:
    return BadRequest(message, code=code)


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"invalid_{name}", f"{name} must be a whole number of seconds.")
    return value


@dataclass(frozen=True, slots=True)
class MintRequest:
    photo_ids: list[int]
    expire: int  # before bucketing
    cover_playback: bool = False
    visitor: Identity | None = None  # whom the backend mints for (access rules)


def parse_mint_request(body: Any, max_ttl: int, now: int) -> MintRequest:
    """Validate a mint body. ttl and expire are capped by the key's max_ttl; absurd values
    (past, or beyond a year) are refused."""
    if not isinstance(body, dict):
        raise _bad("invalid_body", "The body must be a JSON object.")
    unknown = set(body) - _ALLOWED_KEYS
    if unknown:
        raise _bad("unknown_field", "Unknown field(s): " + ", ".join(sorted(unknown)[:5]))
    photo_ids = _photo_ids(body.get("photo_ids"))
    ttl = _ttl(body, now)
    cover = body.get("cover_playback", False)
    if not isinstance(cover, bool):
        raise _bad("invalid_cover_playback", "cover_playback must be true or false.")
    visitor = _visitor(body["visitor"]) if "visitor" in body else None
    return MintRequest(photo_ids, now + min(ttl, max_ttl), cover, visitor)


def _photo_ids(ids: Any) -> list[int]:
    if not isinstance(ids, list) or not ids:
        raise _bad("invalid_photo_ids", "photo_ids must be a non-empty list.")
    if len(ids) > MAX_IDS:
        raise _bad("too_many_photo_ids", f"At most {MAX_IDS} photo ids per call.")
    return [
        v if type(v) is int and 0 < v <= MAX_PHOTO_ID else photo_id_or_400(v, _BAD_ID) for v in ids
    ]  # plain numbers (the usual case) are checked inline; the rest by the one id parser


def _ttl(body: dict[str, Any], now: int) -> int:
    """The seconds asked for, from ``ttl`` or ``expire`` (one of them, within a year)."""
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
    return ttl


def _visitor(value: Any) -> Identity:
    """``{"email": ..., "groups": [...]}``: the person a backend mints for, as it vouches."""
    bad = _bad(
        "invalid_visitor",
        'visitor must be {"email": "<address>", "groups": ["<group>", ...]} (groups optional).',
    )
    if not isinstance(value, dict) or set(value) - _VISITOR_KEYS:
        raise bad
    email, groups = value.get("email"), value.get("groups", [])
    if not isinstance(email, str) or len(email) > 254 or email_domain(email) is None:
        raise bad
    if not isinstance(groups, list) or len(groups) > 100:
        raise bad
    if not all(isinstance(g, str) and 0 < len(g) <= 256 for g in groups):
        raise bad
    return Identity(email=email, groups=tuple(groups))


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body: ``RequestBodies`` (around this endpoint) has read it already, whole
    and within the size limit, and given it a Content-Length."""
    length = environ.get("CONTENT_LENGTH") or "0"
    return bytes(environ["wsgi.input"].read(int(length))) if length.isdigit() else b""


class MintApi(FastPath):
    """The mint endpoint, answering its one path before the Flask app sees the request."""

    path = re.compile(r"/api/v1/sites/([^/]+)/tokens")

    def __init__(self, app: WsgiApp, current: Callable[[], GatewayRuntime]) -> None:
        super().__init__(app, current)
        self._minted: dict[str, Any] = {}  # the counter's child per site, looked up once

    def answer(
        self, match: re.Match[str], environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        environ[ROUTE_KEY] = ROUTE
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise MethodNotAllowed(("POST",))
            body = self.mint(match.group(1), environ)
        except Exception as exc:
            error = exc if isinstance(exc, GatewayError) else GatewayError()
            if error is not exc:
                log.error("unhandled error", exc_info=exc)
            body = error_json(error)
            start_response(status_line(error.status), json_error_headers(error, body))
            return [body]
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

    def mint(self, site_name: str, environ: dict[str, Any]) -> bytes:
        svc = self.runtime
        key = svc.keyring.authenticate(environ.get("HTTP_AUTHORIZATION"))
        site = svc.settings.sites.get(site_name)
        if site is None:
            raise NotFound("There is no such site.", code="no_such_site")
        if site.name not in key.sites:
            raise Forbidden(
                "This API key may not mint tokens for this site.", code="site_not_allowed"
            )
        tracing.annotate(**{"gateway.site": site.name})
        svc.limiter.per_second(f"key:{key.name}", key.rate_limit)
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if mimetype != "application/json":
            raise UnsupportedMediaType()
        try:
            body = loads(read_body(environ))
        except ValueError:
            raise _bad("invalid_json", "The body is not valid JSON.") from None
        now = int(time.time())
        asked = parse_mint_request(body, key.max_ttl, now)
        minter = svc.site(site.name).minter
        minted = minter.mint(
            asked.photo_ids,
            minter.expire_after(asked.expire - now, now),
            admit=self._rules(site, asked.visitor) if key.enforce_rules and site.rules else None,
            playback_cap=key.max_ttl if asked.cover_playback else None,
            spend_cold=lambda n: self._spend_cold(key, site.name, n),
            now=now,
        )
        granted = minted.photo_ids
        counter = self._minted.get(site.name)
        if counter is None:
            counter = self._minted[site.name] = metrics.TOKENS_MINTED.labels(site.name, "api")
        counter.inc(len(granted))
        extra: dict[str, Any] = {}
        if asked.cover_playback:
            extra["cover_playback"] = True
        if asked.visitor is not None:
            extra["visitor"] = asked.visitor.email
        audit(  # one line per call, however many tokens
            "tokens_minted",
            via="api",
            api_key=key.name,
            site=site.name,
            photo_ids=granted,
            refused=minted.refused,
            expire=max(minted.expires.values(), default=minted.expire),
            **extra,
        )
        return minted.json()

    def _rules(self, site: SiteSettings, visitor: Identity | None) -> Admission:
        """The site's access rules for a key that must apply them: for the visitor the
        backend names, or for nobody (then every rule-covered video is refused)."""
        standing = self.runtime.standing

        def admit(info: PhotoInfo) -> Refused | None:
            decision = rules_decision(site, visitor, info.albums, info.tags, standing)
            if decision.allowed:
                return None
            return Refused(info.photo_id, "forbidden_by_rule", decision.message)

        return admit

    def _spend_cold(self, key: ApiKeySettings, site: str, cold: int) -> None:
        """Ids only 23 can answer cost a call each: a key gets cold_lookups_per_minute. While
        the store is down the budget cannot be counted, and minting goes on (degraded, not
        refused: those lookups are single-flight per process still)."""
        try:
            self.runtime.limiter.spend(
                f"cold:{key.name}",
                cold,
                key.cold_lookups_per_minute,
                f"This key asked for {key.cold_lookups_per_minute} videos the gateway had to "
                "look up at 23 within a minute; retry after Retry-After seconds (videos "
                "already looked up stay available).",
                "too_many_cold_lookups",
            )
        except TooManyRequests:
            metrics.COLD_LOOKUPS_REFUSED.labels(site, key.name).inc()
            raise
        except StoreUnavailable:
            pass
