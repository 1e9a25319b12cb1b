"""Answers for operators: why a person cannot get into a site, and what the gateway is
running with (every secret masked)."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, SecretStr

from gateway.entitlements import Standing
from gateway.errors import UpstreamError
from gateway.i18n import gettext as _
from gateway.identity.base import Identity
from gateway.policy import conditions, decide, rules_decision
from gateway.runtime import GatewayRuntime
from gateway.settings import Settings, SiteSettings
from gateway.twentythree.cache import Missing

MASK = "********"
EVENTS_SHOWN = 25


@dataclass(frozen=True)
class Verdict:
    provider: str
    kind: str
    allowed: bool
    code: str
    message: str


@dataclass(frozen=True)
class Diagnosis:
    site: SiteSettings
    email: str
    verdicts: list[Verdict]
    groups_seen: tuple[str, ...] | None  # what the provider said at the last sign-in
    standing: str | None  # entitlement: active / lapsed / none (None: not a paywalled site)
    events: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    video: VideoVerdict | None = None


@dataclass(frozen=True)
class VideoVerdict:
    """The site's access rules for one video and this person."""

    photo_id: int
    albums: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()  # the rules covering it, as labels
    allowed: bool = True
    code: str = ""
    message: str = ""


def diagnose(
    svc: GatewayRuntime, site: SiteSettings, email: str, photo_id: int | None = None
) -> Diagnosis:
    """The site's policy for ``email`` through each of its providers, as far as the gateway
    can tell without the person: groups come from their last sign-in (audit), entitlements
    from the database, and the audit trail says what happened when they tried."""
    wanted = email.strip().lower()
    events = [
        e
        for e in svc.telemetry.recent()
        if str(e.get("email", "")).lower() == wanted and e.get("site") in (None, site.name)
    ][:EVENTS_SHOWN]
    seen = next((tuple(e["groups"]) for e in events if isinstance(e.get("groups"), list)), None)
    notes: list[str] = []
    standing = _standing(svc, site, wanted, notes)
    notes += _gaps(site, seen)
    lookup = (lambda _person, _product: standing or "none") if site.require_entitlement else None
    verdicts = [_verdict(svc, site, name, wanted, seen, lookup) for name in site.identities]
    video = None
    if photo_id is not None:
        person = Identity(wanted, groups=seen or (), email_verified=True)
        video = _video(svc, site, person, photo_id, notes)
    return Diagnosis(site, wanted, verdicts, seen, standing, events, notes, video)


def _verdict(
    svc: GatewayRuntime,
    site: SiteSettings,
    name: str,
    email: str,
    seen: tuple[str, ...] | None,
    lookup: Any,
) -> Verdict:
    """One provider's verdict: no account there at all, or the site's policy, naming what
    is missing (the operator may see the groups and domains the visitor's page does not)."""
    kind = svc.settings.identities[name].type if name in svc.settings.identities else "?"
    person = Identity(email, groups=seen or (), provider=name, email_verified=True)
    decision = decide(site, person, lookup)
    message = _(decision.message) + _missing(
        decision.code, site.allow_groups, site.allow_email_domains, site.require_entitlement
    )
    knows = getattr(svc.providers.get(name), "knows", None)
    if callable(knows) and knows(email) is False:  # a password provider with no such account
        absent = _("%(email)s has no account with this provider.", email=email)
        if decision.allowed:
            return Verdict(name, kind, False, "no_account", absent)
        message += " " + absent
    return Verdict(name, kind, decision.allowed, decision.code, message)


def _missing(code: str, groups: Any, domains: Any, product: str) -> str:
    """What a refusal lacks, by name: " Needs one of the groups: board."."""
    if code == "group_not_allowed":
        return " " + _("Needs one of the groups: %(names)s.", names=", ".join(groups))
    if code == "domain_not_allowed":
        return " " + _("Needs an address in: %(names)s.", names=", ".join(domains))
    if code in ("entitlement_required", "subscription_lapsed"):
        return " " + _("Needs the entitlement: %(product)s.", product=product)
    return ""


def _standing(
    svc: GatewayRuntime, site: SiteSettings, email: str, notes: list[str]
) -> Standing | None:
    """The person's standing for the site's required entitlement, when it requires one."""
    if not site.require_entitlement:
        return None
    if svc.entitlements is None:
        notes.append(_("No entitlement database is open, so nobody holds an entitlement."))
        return None
    return svc.entitlements.standing(email, site.require_entitlement)


def _gaps(site: SiteSettings, seen: tuple[str, ...] | None) -> list[str]:
    """What the verdicts cannot know, said before them."""
    notes: list[str] = []
    if not site.identities:
        notes.append(_("This site has no identity provider: nobody can sign in to it."))
    if site.allow_groups and seen is None:
        notes.append(
            _(
                "The site requires a group; groups are known only from a sign-in, and this "
                "address has not signed in recently, so the verdicts below assume no groups."
            )
        )
    return notes


def _video(
    svc: GatewayRuntime, site: SiteSettings, person: Identity, photo_id: int, notes: list[str]
) -> VideoVerdict | None:
    """The video's channels and tags (from the catalogue or 23) and the rules' decision."""
    try:
        info = svc.site(site.name).minter.photos([photo_id])[photo_id]
    except UpstreamError as exc:
        notes.append(
            _("Video %(id)s: the video site did not answer (%(code)s).", id=photo_id, code=exc.code)
        )
        return None
    if isinstance(info, Missing):
        notes.append(_("Video %(id)s: the site has no such video.", id=photo_id))
        return None
    decision = rules_decision(site, person, info.albums, info.tags, svc.standing)
    rules = [r for r in site.rules if r.covers(info.albums, info.tags)]
    unmet = next(
        (r for r in rules if not rules_decision_for(r, person, svc.standing).allowed), None
    )
    message = _(decision.message)
    if unmet is not None:
        groups, domains = unmet.allow_groups, unmet.allow_email_domains
        message += _missing(decision.code, groups, domains, unmet.require_entitlement)
    return VideoVerdict(
        photo_id,
        info.albums,
        info.tags,
        tuple(r.label for r in rules),
        decision.allowed,
        decision.code,
        message,
    )


def masked(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, every secret replaced by ``MASK``."""
    out = {
        name: _plain(getattr(settings, name))
        for name in ("gateway", "store", "sites", "identity", "api_keys", "admin")
    }
    return {k: v for k, v in out.items() if v not in (None, {})}


_SENSITIVE = re.compile(r"password|secret|private|token")


def _fields(names: Any, value: Any) -> dict[str, Any]:
    """A model's or dataclass's fields; any whose name says it is sensitive is masked."""
    out = {}
    for name in names:
        item = getattr(value, name)
        out[name] = MASK if _SENSITIVE.search(name) and item else _plain(item)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, BaseModel):
        return _fields(type(value).model_fields, value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields([f.name for f in dataclasses.fields(value)], value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()  # a key's SHA-256 digest, as the config file writes it
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def as_toml(data: Mapping[str, Any]) -> str:
    """The masked configuration as TOML that parses back (tomli-w), in the config's order;
    keys without a value (None) are left out, as TOML has no null."""
    import tomli_w

    return tomli_w.dumps(_without_none(data))


def _without_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def rules_decision_for(rule: Any, person: Identity, standing: Any) -> Any:
    """One access rule's conditions for this person."""
    return conditions(
        person,
        rule.allow_email_domains,
        rule.allow_groups,
        rule.require_entitlement,
        standing,
        "this video",
    )
