"""Typed access to the gateway runtime from inside a request."""

from __future__ import annotations

from typing import cast

from flask import current_app, g, request

from gateway.clientip import client_bucket
from gateway.clientip import visitor_ip as client_address
from gateway.errors import BadRequest, NotFound, TooManyRequests
from gateway.logs import audit
from gateway.runtime import GatewayRuntime
from gateway.settings import SiteSettings
from gateway.twentythree.coerce import photo_id

PENDING_PER_MINUTE = 300  # sign-ins one client (an IPv4 address, an IPv6 /64) may start


def runtime() -> GatewayRuntime:
    """The runtime this request started with: a reload swapping the app's runtime meanwhile
    does not mix an old site with a new one inside one request."""
    found = g.get("gateway_runtime")
    if found is None:
        found = g.gateway_runtime = current_app.extensions["gateway.runtime"]
    return cast(GatewayRuntime, found)


def site_or_404(name: str) -> SiteSettings:
    site = runtime().settings.sites.get(name)
    if site is None:
        raise NotFound("There is no such site.", code="no_such_site")
    return site


def visitor_ip() -> str:
    """This request's client address (with the gateway's trusted proxies)."""
    return client_address(request, runtime().settings.gateway.trusted_proxies)


def limit_pending_sign_ins(site: str) -> None:
    """Each sign-in handed to a provider may leave single-use state behind (the OIDC state is
    marked used at its callback), so one client may start only so many a minute."""
    bucket = client_bucket(visitor_ip())
    try:
        runtime().limiter.limit(f"pending:{bucket}", PENDING_PER_MINUTE, 60)
    except TooManyRequests:
        audit("sign_in_throttled", site=site, client_ip=visitor_ip(), reason="pending_sign_ins")
        raise


def photo_id_or_400(
    raw: object, message: str = "The photo id must be a positive whole number."
) -> int:
    found = photo_id(raw)
    if found is None:
        raise BadRequest(message, code="invalid_photo_id")
    return found
