"""Typed access to the per-app services from inside a request."""

from __future__ import annotations

from typing import cast

from flask import current_app, request

from gateway.errors import NotFound
from gateway.services import Services
from gateway.settings import SiteSettings
from gateway.web.clientip import client_ip


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
