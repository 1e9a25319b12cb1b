"""E-mail addresses: the one strict parser every provider and the policy use."""

from __future__ import annotations

import re

_LOCAL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


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


def canonical_email(email: str) -> str | None:
    """The one form addresses are compared in: a strict ASCII address (``email_domain``'s
    rules) lower-cased, else None. ``str.lower`` alone maps look-alikes onto real letters
    (KELVIN SIGN "\u212a" becomes "k"), so it must never decide who someone is."""
    if email_domain(email) is None:
        return None
    return email.lower()
