"""``/account/<site>``: a signed-in visitor's own account: who they are, their plan, its
status and renewal or end date (from the entitlement store), a way to sign out and, for a
Stripe subscriber where the identity has ``portal = true``, "Manage subscription": a POST
(form token, bound to the session) that opens Stripe's customer portal for **that visitor's
own customer** (kept in their signed session at checkout, or, for a subscriber who signed in
by an e-mail link, the customer behind their grant) and comes back here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, redirect, request, url_for
from werkzeug.wrappers import Response

from gateway.csrf import FormGuard
from gateway.errors import Forbidden
from gateway.identity.base import Identity, OpensBillingPortal, ProvesMailbox
from gateway.logs import audit
from gateway.settings import SiteSettings
from gateway.web.current import runtime, site_or_404
from gateway.web.visitor import current_session, private_page, signed_in_visitor, visitor_for

bp = Blueprint("account", __name__)


class NoSubscription(Forbidden, code="no_subscription"):
    """There is no subscription to manage here."""


@dataclass(frozen=True)
class PortalDoor:
    """How this visitor reaches the payment provider's customer portal: ``provider`` (one of
    the site's identities, with ``portal = true``) and their customer, known from the session
    (a checkout they made) or, for a subscriber who signed in by an e-mail link, looked up from
    the grants their address holds (``grant_refs``) when they ask."""

    provider: OpensBillingPortal
    customer: str = ""
    grant_refs: tuple[str, ...] = ()

    def customers(self) -> set[str]:
        """Every customer behind this visitor's grants. More than one means someone else paid
        with this address too (Stripe does not check what a payer types): then the gateway
        cannot tell which is theirs and opens none."""
        if self.customer:
            return {self.customer}
        found = (self.provider.customer_of(ref) for ref in self.grant_refs)
        return {customer for customer in found if customer}


def _portals(site: SiteSettings) -> list[OpensBillingPortal]:
    """The site's identities that open a customer portal."""
    found: list[OpensBillingPortal] = []
    for name in site.identities:
        provider: object = runtime().providers.get(name)
        if isinstance(provider, OpensBillingPortal) and provider.offers_portal:
            found.append(provider)
    return found


def _portal_for(site: SiteSettings, identity: Identity, plan: Any) -> PortalDoor | None:
    """The portal this visitor may open, or None: a JWT or campus visitor has no customer of
    their own; an e-mail-link visitor has one when their grant came from a portal provider."""
    portals = _portals(site)
    for provider in portals:
        customer = provider.own_customer(identity)
        if customer:
            return PortalDoor(provider, customer=customer)
    provider_of_visitor = runtime().providers.get(identity.provider)
    mailed = isinstance(provider_of_visitor, ProvesMailbox) and provider_of_visitor.proves_mailbox()
    entitlements = runtime().entitlements
    if not mailed or not plan or entitlements is None:
        return None
    for provider in portals:
        if provider.grant_source == plan["source"]:
            refs = entitlements.refs(identity.email, site.require_entitlement, plan["source"])
            return PortalDoor(provider, grant_refs=tuple(refs))
    return None


def _plan(site: SiteSettings, identity: Identity) -> Any:
    """The visitor's newest grant of the site's product (status, end, source), if any."""
    entitlements = runtime().entitlements
    if not site.require_entitlement or entitlements is None:
        return None
    if identity.grant is not None:  # a checkout's own grant, never the address's others
        return entitlements.grant(*identity.grant)
    if not identity.email_proven:
        return None
    return entitlements.latest(identity.email, site.require_entitlement)


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
    plan = _plan(site, identity)
    portal = _portal_for(site, identity, plan) is not None and bool(_binding())
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
    door = _portal_for(site, identity, _plan(site, identity)) if identity else None
    if identity is None or door is None or not _binding():
        raise NoSubscription()
    _guard().check_bound(request.form.get("csrf", ""), _binding())
    customers = door.customers()
    if not customers:
        raise NoSubscription()
    if len(customers) > 1:
        audit("portal_refused", site=site.name, email=identity.email, reason="several_customers")
        raise Forbidden(
            "More than one customer has paid with this address, so this page cannot tell which "
            "subscription is yours. Use the link in your payment receipt to manage it.",
            code="ambiguous_customer",
        )
    back = runtime().settings.gateway.public_url + url_for("account.account", site_name=site.name)
    url = door.provider.portal_url(customers.pop(), back)
    audit("portal_opened", site=site.name, email=identity.email, provider=identity.provider)
    return redirect(url, code=303)
