"""Who the visitor is, as one site may see them; read once per request.

Two copies of the same signed session: ``gw_session`` (SameSite=Lax, every path) for the
gateway's own pages, and, when the gateway is on https, ``gw_player`` (SameSite=None, only
under ``/protection/``) because the 23 player asks ``/protection`` from the video site's page,
which is often another site, where a Lax cookie is not sent. ``/protection`` answers only
requests whose Referer is a page of the video site, whatever proves the identity.

A site sees a session only when one of its own providers produced it (``policy.trusts``);
a provider that identifies each request (a trusted proxy's headers) counts on every request.
"""

from __future__ import annotations

from typing import Any, NoReturn

from flask import abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from gateway import cookies
from gateway.errors import Forbidden, GatewayError
from gateway.identity.base import Identity
from gateway.logs import audit
from gateway.policy import Decision, decide, trusts
from gateway.sessions import DEVICE_LIMIT, MAX_COOKIE, SignedSession
from gateway.settings import SiteSettings
from gateway.web.current import runtime, visitor_ip
from gateway.web.message_pages import message_page


def current_session() -> SignedSession | None:
    """The visitor's gateway session (the Lax cookie), unless forged, expired or revoked."""
    if "visitor" not in g:
        svc = runtime()
        g.visitor = svc.sessions.load(svc.cookies.get(request, cookies.SESSION))
    session: SignedSession | None = g.visitor
    return session


def _player_session() -> SignedSession | None:
    """The session as the 23 player's script request shows it: the Lax cookie when the page
    is same-site, else the SameSite=None copy. Callers check the Referer first."""
    session = current_session()
    if session is None:
        svc = runtime()
        session = svc.sessions.load(svc.cookies.get(request, cookies.PLAYER))
    return session


def visitor_for(site: SiteSettings, *, player: bool = False) -> Identity | None:
    """The visitor as ``site`` may see them, or None for a stranger there."""
    for provider in runtime().site(site.name).request_identifiers:
        identity = provider.identify(request)
        if identity is not None:
            return identity
    session = _player_session() if player else current_session()
    if session is None or not trusts(site, session.identity):
        return None
    return session.identity if runtime().keeps_sessions_for(session.identity) else None


class NotSignedIn(GatewayError, status=401, code="not_signed_in"):
    """Sign in to watch this video."""


class SignInNotConfigured(GatewayError, status=503, code="sso_not_configured"):
    """Sign-in is not configured for this video site."""


def access_decision(site: SiteSettings, identity: Identity) -> Decision:
    """The site's policy for this identity, with the stored entitlements when there are any."""
    return decide(site, identity, runtime().standing)


def sign_in_first(site: SiteSettings, here: str) -> Response:
    """A stranger on one of the gateway's own pages for ``site``: its sign-in, then back."""
    login = url_for("sso.login", site_name=site.name, return_url=site.url + "/", next=here)
    return redirect(login, code=303)


def signed_in_visitor(site: SiteSettings, here: str) -> Identity:
    """The visitor on the gateway's own page ``here`` for ``site``; a stranger is answered
    with the site's sign-in (and back here) instead."""
    identity = visitor_for(site)
    if identity is None:
        abort(sign_in_first(site, here))
    return identity


def private_page(template: str, status: int = 200, **context: Any) -> Response:
    """A page about this visitor (their account, their upload): HTML, never cached."""
    page = render_template(template, **context)
    response = Response(page, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def signed_out_elsewhere(site: SiteSettings) -> Response | None:
    """The page for a device whose session a newer device of the same person ended (the
    site's ``max_sessions_per_person``): why, and a way to sign in again here. Once: the
    stale cookie goes with it."""
    svc = runtime()
    cookie = svc.cookies.get(request, cookies.SESSION)
    if (
        not cookie
        or current_session() is not None
        or svc.sessions.why_refused(cookie) != DEVICE_LIMIT
    ):
        return None
    response = message_page(
        403,
        "signed_out_elsewhere",
        "You were signed out here because your account signed in on another device.",
        retry_url=url_for("sso.login", site_name=site.name, return_url=site.url + "/"),
        retry_label="Sign in again",
        site=site.name,
    )
    end_session(response)
    return response


def allowed_visitor(site: SiteSettings, *, player: bool = False) -> Identity:
    """The visitor (as the player sees them when ``player``), when the site's policy lets
    them in.

    Raises NotSignedIn (a stranger here; SignInNotConfigured when the site has no way to sign
    in) or Forbidden with the policy's reason, which is audited like a refused sign-in.
    """
    identity = visitor_for(site, player=player)
    if identity is None:
        raise NotSignedIn() if site.identities else SignInNotConfigured()
    decision = access_decision(site, identity)
    if not decision.allowed:
        deny(site, identity, decision)
    return identity


def deny(
    site: SiteSettings, identity: Identity, decision: Decision, code: str = "", **fields: Any
) -> NoReturn:
    """Refuse a signed-in visitor (403 with ``code``, else the decision's), with the
    ``access_denied`` audit line that names the unmet condition."""
    audit(
        "access_denied",
        site=site.name,
        email=identity.email,
        provider=identity.provider,
        detail=decision.code,
        path=request.path,
        **fields,
    )
    raise Forbidden(decision.message, code=code or decision.code)


class SessionTooLarge(Forbidden, code="session_too_large"):
    """Your account belongs to too many of the groups this gateway checks to fit in a session.
    Please ask the administrator to check the groups in its configuration.
    """


def _device() -> dict[str, str]:
    """Where a request comes from, as the console lists a session."""
    return {"ip": visitor_ip(), "agent": request.headers.get("User-Agent", "")[:160]}


def _set(response: Response, session: SignedSession, site: str = "") -> None:
    """A new session: indexed under its person, device limits applied, the cookie set."""
    svc = runtime()
    svc.sessions.note(session, **_device(), **({"site": site} if site else {}))
    configured = svc.settings.sites.get(site)
    if configured is not None and configured.max_sessions_per_person:
        ended = svc.sessions.limit_devices(session, site, configured.max_sessions_per_person)
        if ended:
            audit(
                "sessions_limited",
                site=site,
                email=session.identity.email,
                signed_out=ended,
                limit=configured.max_sessions_per_person,
            )
    _write_cookie(response, session)


def _write_cookie(response: Response, session: SignedSession) -> None:
    svc = runtime()
    value = svc.sessions.dump(session)
    if len(value) > MAX_COOKIE - 256:  # the browser would drop it: refuse, never loop
        audit("sso_failed", email=session.identity.email, detail="session_too_large")
        raise SessionTooLarge()
    svc.cookies.set(response, cookies.SESSION, value, svc.sessions.max_age)
    svc.cookies.set(response, cookies.PLAYER, value, svc.sessions.max_age)  # https only


def start_session(response: Response, identity: Identity, site: str = "") -> None:
    """Remember the visitor: the same session when the same identity is signed in already,
    else a new one (and the browser's previous session, of someone else, ends everywhere)."""
    current = current_session()
    if current is not None and current.identity == runtime().sessions.narrow(identity):
        keep_alive(response)
        return
    if current is not None:
        runtime().sessions.revoke(current)
    if not runtime().keeps_sessions_for(identity):
        return  # a campus address: each request shows it again; no cookie to carry home
    _set(response, runtime().sessions.new(identity), site)


def keep_alive(response: Response) -> None:
    """Slide the idle expiry of a visitor who is using the gateway (at most once a minute)."""
    current = current_session()
    refreshed = None if current is None else runtime().sessions.touched(current)
    if refreshed is not None:
        runtime().sessions.seen(refreshed, **_device())
        _write_cookie(response, refreshed)


def end_session(response: Response) -> None:
    svc = runtime()
    svc.cookies.delete(response, cookies.SESSION)
    svc.cookies.delete(response, cookies.PLAYER)
