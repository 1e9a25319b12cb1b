"""Typed access to the per-app services from inside a request."""

from __future__ import annotations

from typing import cast

from flask import current_app, request

from gateway.clientip import client_ip
from gateway.errors import BadRequest, NotFound
from gateway.services import Services
from gateway.settings import SiteSettings
from gateway.twentythree.values import photo_id


def services() -> Services:
    return cast(Services, current_app.extensions["gateway.services"])


def site_or_404(name: str) -> SiteSettings:
    site = services().settings.sites.get(name)
    if site is None:
        raise NotFound("There is no such site.", code="no_such_site")
    return site


def visitor_ip() -> str:
    trusted = services().settings.gateway.trusted_proxies
    return client_ip(request.remote_addr or "", request.headers.get("X-Forwarded-For"), trusted)


def photo_id_or_400(
    raw: object, message: str = "The photo id must be a positive whole number."
) -> int:
    found = photo_id(raw)
    if found is None:
        raise BadRequest(message, code="invalid_photo_id")
    return found
