"""May this identity enter this site? Provider trust, domains, groups and entitlements; nothing
else decides.

A site trusts only the providers it lists: an identity (a gateway session, a proxy's headers,
a paywall token) produced by any other provider counts as "not signed in" there, so a paywall
or a static account can never open an intranet that trusts only its corporate IdP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.emails import email_domain
from gateway.identity.base import Identity
from gateway.settings import SiteSettings


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str = ""
    message: str = ""


ALLOW = Decision(True)

# (identity, product) -> "active" | "lapsed" | "none": the stored entitlements, when there are any.
StandingLookup = Callable[[Identity, str], str]


class GrantBook(Protocol):
    """The entitlement store, as policy reads it."""

    def standing(self, email: str, product: str) -> str: ...

    def grant_standing(self, source: str, ref: str, product: str) -> str: ...


def standing_in(book: GrantBook) -> StandingLookup:
    """How a visitor stands for a product: by the one grant their identity names (a checkout's
    own subscription, so a cancellation closes its session's door), else by their address when
    it is proven. An address only typed at a checkout holds nothing else."""

    def lookup(identity: Identity, product: str) -> str:
        if identity.grant is not None:
            return book.grant_standing(*identity.grant, product)
        if not identity.email_proven:
            return "none"
        return book.standing(identity.email, product)

    return lookup


def trusts(site: SiteSettings, identity: Identity) -> bool:
    """Whether ``identity`` counts on ``site`` at all: one of the site's own providers made it."""
    return bool(identity.provider) and identity.provider in site.identities


def decide(
    site: SiteSettings, identity: Identity, standing: StandingLookup | None = None
) -> Decision:
    if not trusts(site, identity):
        return Decision(
            False, "untrusted_provider", "This video site does not accept that kind of sign-in."
        )
    domain = email_domain(identity.email)
    if domain is None:
        return Decision(False, "invalid_email", "Your account has no usable e-mail address.")
    if not identity.email_verified:
        return Decision(False, "email_unverified", "Your e-mail address is not verified.")
    return conditions(
        identity,
        site.allow_email_domains,
        site.allow_groups,
        site.require_entitlement,
        standing,
        "this site",
    )


def may_upload(
    site: SiteSettings, identity: Identity, standing: StandingLookup | None = None
) -> Decision:
    """May this visitor send videos to the site? Only someone who may enter it, and whom the
    site's ``[uploads]`` allow-list names (by e-mail or group)."""
    entry = decide(site, identity, standing)
    if not entry.allowed:
        return entry
    # An address typed at a checkout (not proven) names nobody on the allow-list.
    listed = site.uploads is not None and site.uploads.admits(identity.email, identity.groups)
    if not (listed and identity.email_proven):
        return Decision(
            False, "upload_not_allowed", "Your account may not upload videos to this site."
        )
    return ALLOW


def conditions(
    identity: Identity,
    domains: tuple[str, ...],
    groups: tuple[str, ...],
    product: str,
    standing: StandingLookup | None,
    what: str,
) -> Decision:
    """The conditions a site (or an access rule, for some of its videos) may set: e-mail
    domains, groups, an entitlement. ``what`` names the thing refused in the messages."""
    if domains and email_domain(identity.email) not in domains:
        return Decision(
            False, "domain_not_allowed", f"Accounts from your e-mail domain may not enter {what}."
        )
    if groups and not set(groups) & set(identity.groups):
        return Decision(
            False, "group_not_allowed", f"Your account is not in a group allowed to enter {what}."
        )
    if product and product not in identity.entitlements:
        # No lookup means no stored entitlements to consult: fail closed.
        held = standing(identity, product) if standing is not None else "none"
        if held == "lapsed":
            return Decision(
                False,
                "subscription_lapsed",
                f"Your subscription has ended or its payment failed, so {what} is closed to "
                "you for now. Renew it to watch again.",
            )
        if held != "active":
            return Decision(
                False,
                "entitlement_required",
                f"{what.capitalize()} needs a subscription you do not have.",
            )
    return ALLOW


def rules_decision(
    site: SiteSettings,
    identity: Identity | None,
    albums: tuple[int, ...],
    tags: tuple[str, ...],
    standing: StandingLookup | None = None,
) -> Decision:
    """The site's access rules for one video (its channels and tags): every rule covering it
    must be met. ``identity`` None (a backend minting for nobody in particular) meets none."""
    for rule in site.rules:
        if not rule.covers(albums, tags):
            continue
        if identity is None:
            return Decision(
                False, "forbidden_by_rule", f"This video ({rule.label}) is only for some visitors."
            )
        decision = conditions(
            identity,
            rule.allow_email_domains,
            rule.allow_groups,
            rule.require_entitlement,
            standing,
            "this video",
        )
        if not decision.allowed:
            return decision
    return ALLOW
