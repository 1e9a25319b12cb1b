"""What every identity provider produces, the small core protocol they all implement, and the
optional capabilities ``web/`` discovers by protocol (never by class).

Core: ``begin`` either knows the visitor at once (an Identity) or answers with what the visitor
must do next: a redirect to an IdP, or a ``Page`` (a form) or ``Notice`` that ``web`` renders
(providers say what to show, never render HTML). Providers never call 23 and never import
``web``.

Capabilities, each a separate small protocol:

* ``HasRoutes``: the provider's own steps under ``/sso/<kind>/<identity>/<step>`` (an OIDC
  callback, a SAML assertion consumer, a Stripe return), mounted by one generic dispatcher;
  a step that finishes a sign-in returns ``Completed``.
* ``IdentifiesEachRequest``: knows the visitor from the request alone (a trusted proxy's
  headers), so visitor endpoints need no sign-in round trip.
* ``BeforeChooser``: honoured before any chooser or session reuse (a paywall's token).
* ``EndsIdpSession``: can end the visitor's session at the IdP (RP-initiated logout).
* ``ReceivesWebhooks``: accepts signed events from its service (Stripe).
* ``on_chooser = False``: never offered as a button on the chooser.
* ``sells_entitlements = True``: offered as "Subscribe"/"Renew" to a visitor who lacks a
  site's ``require_entitlement``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode

from flask import Request
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response


@dataclass(frozen=True)
class Identity:
    """Who the visitor is, as a provider vouches for it."""

    email: str
    name: str = ""
    groups: tuple[str, ...] = ()
    provider: str = ""  # the [identity.<name>] that vouched
    email_verified: bool = True
    entitlements: tuple[str, ...] = ()
    subject: str = ""  # the IdP's stable id for the person (OIDC ``sub``), when it has one
    idp_session: str = ""  # the IdP's session id (OIDC ``sid``), for back-channel logout
    # False: the address is only what the visitor typed (into a payment form); it opens what
    # was bought with it, never what another account with that address may do.
    email_proven: bool = True
    # The one grant this identity holds, by its source's own id (source, ref): a checkout's
    # subscription. Policy asks the entitlement store about that grant on every decision (a
    # cancellation closes the door at once), never about the address.
    grant: tuple[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "email": self.email,
            "name": self.name,
            "groups": list(self.groups),
            "provider": self.provider,
            "email_verified": self.email_verified,
            "entitlements": list(self.entitlements),
        }
        if self.subject:
            out["sub"] = self.subject
        if self.idp_session:
            out["sid"] = self.idp_session
        if not self.email_proven:
            out["typed"] = True
        if self.grant is not None:
            out["g"] = list(self.grant)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identity:
        return cls(
            email=str(data["email"]),
            name=str(data.get("name", "")),
            groups=tuple(str(g) for g in data.get("groups", ())),
            provider=str(data.get("provider", "")),
            email_verified=bool(data.get("email_verified", True)),
            entitlements=tuple(str(e) for e in data.get("entitlements", ())),
            subject=str(data.get("sub", "")),
            idp_session=str(data.get("sid", "")),
            email_proven=not data.get("typed", False),
            grant=_grant(data.get("g")),
        )


def _grant(value: Any) -> tuple[str, str] | None:
    """A (source, ref) pair from a session's JSON, or None."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return (value[0], value[1])
    return None


@dataclass(frozen=True)
class PendingLogin:
    """Where a sign-in started and where it must land: carried through the provider."""

    site: str
    return_url: str
    next: str = ""  # a gateway page (/embed/..., /download/...) to return to instead of 23

    def to_json(self) -> dict[str, str]:
        """The one serialized form, used in every cookie, store entry and signed link."""
        return {"s": self.site, "r": self.return_url, "x": self.next}

    @classmethod
    def from_json(cls, data: Any) -> PendingLogin | None:
        """The pending login in ``data``, or None when it is not one."""
        if not isinstance(data, dict):
            return None
        site, url, nxt = data.get("s"), data.get("r"), data.get("x", "")
        if not (isinstance(site, str) and isinstance(url, str) and isinstance(nxt, str)):
            return None
        return cls(site, url, nxt)


@dataclass(frozen=True)
class Completed:
    """A provider step that finished a sign-in: who, and for which pending login."""

    identity: Identity
    pending: PendingLogin


@dataclass(frozen=True)
class Page:
    """A page a provider needs the visitor to see (a password form, "check your mail"). ``web``
    renders ``template`` with ``context``; a page with ``form`` set carries a form whose post
    the provider checks with a ``FormGuard`` of that purpose."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)
    status: int = 200
    form: str = ""  # the CSRF purpose of the page's form, "" for none
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def sign_in_form(
        cls,
        template: str,
        provider: str,
        pending: PendingLogin,
        status: int = 200,
        *,
        form: str = "",
        **context: Any,
    ) -> Page:
        """A provider's sign-in form, posted back to the site's sign-in with the pending
        login; its CSRF purpose is ``form``, else the provider's name."""
        carried = {"site": pending.site, "return_url": pending.return_url, "next": pending.next}
        return cls(template, carried | {"provider": provider} | context, status, form or provider)


@dataclass(frozen=True)
class Notice:
    """A short message page (a cancelled payment): a status, a code, the visitor's wording and
    a way on. ``web`` renders it like every error page."""

    status: int
    code: str
    message: str
    title: str = ""
    retry_url: str | None = None


Shown = Response | Page | Notice  # what a provider answers a browser with
StepResult = Shown | Completed


@dataclass(frozen=True)
class Route:
    """One of a provider's own steps: the HTTP methods it answers and its handler."""

    methods: tuple[str, ...]
    handler: Callable[[Request], StepResult]


class Provider(Protocol):
    """One configured ``[identity.<name>]``."""

    name: str
    label: str

    def begin(self, request: Request, pending: PendingLogin) -> Shown | Identity: ...


@runtime_checkable
class HasRoutes(Protocol):
    kind: str  # the URL segment: /sso/<kind>/<identity>/<step>

    def routes(self) -> Mapping[str, Route]: ...


@runtime_checkable
class IdentifiesEachRequest(Protocol):
    def identify(self, request: Request) -> Identity | None:
        """The visitor this request alone proves, or None (never raises for a stranger)."""
        ...


@runtime_checkable
class BeforeChooser(Provider, Protocol):
    def before_chooser(self, request: Request) -> bool:
        """Whether this request carries something for this provider to take first."""
        ...

    def peek(self, request: Request) -> Identity:
        """Who that something vouches for, checked but not used up (``begin`` uses it)."""
        ...


@runtime_checkable
class EndsIdpSession(Protocol):
    def end_session_url(
        self, identity: Identity, post_logout_redirect_uri: str, state: str
    ) -> str | None:
        """Where to send the visitor to end ``identity``'s session at the IdP (``state``
        comes back to the post-logout URI), or None when the IdP offers no logout."""
        ...


@runtime_checkable
class ReceivesWebhooks(Protocol):
    webhook_kind: str  # /webhooks/<webhook_kind>

    def receive_webhook(self, payload: bytes, headers: Headers) -> Response | None:
        """The answer to a webhook this provider verified, or None when it is not its own."""
        ...


@runtime_checkable
class OpensBillingPortal(Protocol):
    """A payment provider whose subscribers may manage their subscription themselves."""

    grant_source: str  # the ``source`` of the entitlement grants it records

    @property
    def offers_portal(self) -> bool: ...

    def own_customer(self, identity: Identity) -> str | None:
        """The customer an identity it signed in carries (a checkout made then), or None."""
        ...

    def customer_of(self, grant_ref: str) -> str | None:
        """The customer behind one of its grants (the entitlement store's ``ref``)."""
        ...

    def portal_url(self, customer: str, return_url: str) -> str:
        """Where that customer manages their subscription, coming back to ``return_url``."""
        ...


@runtime_checkable
class VouchesPerRequest(Protocol):
    def vouches_per_request_only(self) -> bool:
        """True: its identity holds only for a request that shows it again (a campus
        address), so the gateway keeps no session for it that could be carried elsewhere."""
        ...


@runtime_checkable
class ProvesMailbox(Protocol):
    def proves_mailbox(self) -> bool:
        """True: its visitors showed they read mail at their address (a link sent there), so
        what was bought with that address elsewhere is theirs to manage too."""
        ...


def step_path(kind: str, identity: str, step: str) -> str:
    """Where the dispatcher mounts a provider's step: ``/sso/<kind>/<identity>/<step>``."""
    return f"/sso/{kind}/{identity}/{step}"


def login_url(public_url: str, pending: PendingLogin, provider: str = "") -> str:
    """The site's sign-in again, for the same return URL and gateway link."""
    query = {"return_url": pending.return_url, "next": pending.next, "provider": provider}
    return f"{public_url}/sso/{pending.site}/login?" + urlencode(
        {k: v for k, v in query.items() if v}
    )


def on_chooser(provider: Provider) -> bool:
    """Whether the chooser offers this provider as a button."""
    return bool(getattr(provider, "on_chooser", True))
