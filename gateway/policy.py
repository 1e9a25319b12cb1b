"""May this identity enter this site? Domains, groups and entitlements; nothing else decides."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.identity.base import Identity
from gateway.settings import SiteSettings

_LOCAL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str = ""
    message: str = ""


ALLOW = Decision(True)


def email_domain(email: str) -> str | None:
    """The lower-case domain of a plain ASCII address with exactly one ``@``, else None.

    No look-alikes get through: non-ASCII (IDN homographs, a fullwidth at sign), quoted or
    commented local parts, trailing dots and empty labels are all refused.
    """
    if not email.isascii() or email.count("@") != 1 or len(email) > 254:
        return None
    local, domain = email.split("@")
    domain = domain.lower()
    labels = domain.split(".")
    if (
        not _LOCAL_RE.fullmatch(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        return None
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        return None
    return domain


# (email, product) -> "active" | "lapsed" | "none": the stored entitlements, when there are any.
StandingLookup = Callable[[str, str], str]


def decide(
    site: SiteSettings, identity: Identity, standing: StandingLookup | None = None
) -> Decision:
    domain = email_domain(identity.email)
    if domain is None:
        return Decision(False, "invalid_email", "Your account has no usable e-mail address.")
    if not identity.email_verified:
        return Decision(False, "email_unverified", "Your e-mail address is not verified.")
    if site.allow_email_domains and domain not in site.allow_email_domains:
        return Decision(
            False, "domain_not_allowed", "Accounts from your e-mail domain may not enter this site."
        )
    if site.allow_groups and not set(site.allow_groups) & set(identity.groups):
        return Decision(
            False, "group_not_allowed", "Your account is not in a group allowed to enter this site."
        )
    product = site.require_entitlement
    if product and product not in identity.entitlements:
        # No lookup means no stored entitlements to consult: fail closed.
        held = standing(identity.email, product) if standing is not None else "none"
        if held == "lapsed":
            return Decision(
                False,
                "subscription_lapsed",
                "Your subscription has ended or its payment failed, so this site is closed to "
                "you for now. Renew it to watch again.",
            )
        if held != "active":
            return Decision(
                False, "entitlement_required", "This site needs a subscription you do not have."
            )
    return ALLOW
