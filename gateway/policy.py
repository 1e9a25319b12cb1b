"""May this identity enter this site? Domains, groups and entitlements; nothing else decides."""

from __future__ import annotations

import re
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


def decide(site: SiteSettings, identity: Identity) -> Decision:
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
    if site.require_entitlement and site.require_entitlement not in identity.entitlements:
        # Stored entitlements (paywalls) are not built yet: fail closed.
        return Decision(
            False, "entitlement_required", "This site needs a subscription you do not have."
        )
    return ALLOW
