"""``/account/<site>``: a signed-in visitor's own account: who they are, their plan, its
status and renewal or end date (from the entitlement store), a way to sign out and, for a
Stripe subscriber where the identity has ``portal = true``, "Manage subscription": a POST
(form token, bound to the session) that opens Stripe's customer portal for **that visitor's
own customer** (kept in their signed session at checkout) and comes back here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, url_for
from werkzeug.wrappers import Response

from gateway.csrf import FormGuard
from gateway.errors import Forbidden
from gateway.identity.base import Identity
from gateway.logs import audit
from gateway.settings import SiteSettings
from gateway.web.current import runtime, site_or_404
from gateway.web.visitor import current_session, private_page, signed_in_visitor, visitor_for

bp = Blueprint("account", __name__)


def _portal_for(site: SiteSettings, identity: Identity) -> Any:
    """The stripe provider that may open a portal for this visitor, or None (a JWT, campus
    or e-mail visitor has no Stripe customer in their session)."""
    provider = runtime().providers.get(identity.provider)
    portal = getattr(getattr(provider, "_settings", None), "portal", False)
    if portal and identity.subject.startswith("cus_") and identity.provider in site.identities:
        return provider
    return None


def _guard() -> FormGuard:
    svc = runtime()
    return FormGuard("account:portal", svc.settings.gateway.secret_keys, svc.cookies)


def _binding() -> str:
    session = current_session()
    return session.id if session is not None else ""


@bp.get("/account/<site_name>")
def account(site_name: str) -> Response:
    site = site_or_404(site_name)
    identity = signed_in_visitor(site, f"/account/{site.name}")
    plan = None
    entitlements = runtime().entitlements
    if site.require_entitlement and entitlements is not None:
        plan = entitlements.latest(identity.email, site.require_entitlement)
    portal = _portal_for(site, identity) is not None and bool(_binding())
    return private_page(
        "account.html",
        site=site.name,
        email=identity.email,
        name=identity.name,
        plan=plan,
        product=site.require_entitlement,
        portal=portal,
        csrf=_guard().token(_binding()) if portal else "",
        back=site.url + "/",
    )


@bp.post("/account/<site_name>")
def manage(site_name: str) -> Response:
    site = site_or_404(site_name)
    identity = visitor_for(site)
    provider = _portal_for(site, identity) if identity is not None else None
    if identity is None or provider is None or not _binding():
        raise Forbidden("There is no subscription to manage here.", code="no_subscription")
    _guard().check_bound(request.form.get("csrf", ""), _binding())
    back = runtime().settings.gateway.public_url + url_for("account.account", site_name=site.name)
    url = provider.portal_url(identity.subject, back)
    audit("portal_opened", site=site.name, email=identity.email, provider=identity.provider)
    return redirect(url, code=303)
