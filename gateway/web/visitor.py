"""The visitor's gateway session cookie, read once per request.

Two copies of the same signed value: ``gw_session`` (SameSite=Lax, every path) for the gateway's
own pages, and, when the gateway is on https, ``gw_player`` (SameSite=None, only under
``/protection/``) because the 23 player asks ``/protection`` from the video site's page, which
is often another site, where a Lax cookie is not sent. The player copy only reaches the one
read-only JSON-P path and is believed only with a Referer from the video site itself.
"""

from __future__ import annotations

from flask import g, request
from werkzeug.wrappers import Response

from gateway.errors import Forbidden, GatewayError
from gateway.identity.base import Identity
from gateway.logs import audit
from gateway.policy import Decision, decide
from gateway.redirects import is_site_page
from gateway.sessions import COOKIE, VisitorSession
from gateway.settings import SiteSettings
from gateway.web.context import services

PLAYER_COOKIE = "gw_player"
PLAYER_PATH = "/protection/"


def current_visitor() -> VisitorSession | None:
    if "visitor" not in g:
        g.visitor = services().sessions.load(request.cookies.get(COOKIE))
    visitor: VisitorSession | None = g.visitor
    return visitor


def player_visitor(site: SiteSettings) -> VisitorSession | None:
    """The visitor as the 23 player's script request shows them: the Lax cookie (same-site
    page), else the SameSite=None copy, believed only when the Referer is a page of this
    video site, so another site's page cannot read a visitor's answers through JSON-P."""
    visitor = current_visitor()
    if visitor is None and is_site_page(request.referrer, site):
        visitor = services().sessions.load(request.cookies.get(PLAYER_COOKIE))
        g.visitor = visitor
    return visitor


class NotSignedIn(GatewayError):
    status = 401
    code = "not_signed_in"
    default_message = "Sign in to watch this video."


class SignInNotConfigured(GatewayError):
    status = 503
    code = "sso_not_configured"
    default_message = "Sign-in is not configured for this video site."


def access_decision(site: SiteSettings, identity: Identity) -> Decision:
    """The site's policy for this identity, with the stored entitlements when there are any."""
    store = services().entitlements
    return decide(site, identity, store.standing if store is not None else None)


def allowed_visitor(site: SiteSettings, *, player: bool = False) -> Identity:
    """The signed-in visitor (seen as the player sees them when ``player``), when the site's
    policy lets them in.

    Raises NotSignedIn (no session; SignInNotConfigured when the site has no way to sign in)
    or Forbidden with the policy's reason, which is audited like a refused sign-in.
    """
    visitor = player_visitor(site) if player else current_visitor()
    if visitor is None:
        raise NotSignedIn() if site.identities else SignInNotConfigured()
    decision = access_decision(site, visitor.identity)
    if not decision.allowed:
        audit(
            "access_denied",
            site=site.name,
            email=visitor.identity.email,
            provider=visitor.identity.provider,
            detail=decision.code,
            path=request.path,
        )
        raise Forbidden(decision.message, code=decision.code)
    return visitor.identity


def _set(response: Response, session: VisitorSession) -> None:
    svc = services()
    value = svc.sessions.dump(session)
    secure = svc.settings.gateway.secure_cookies
    max_age = svc.sessions.max_age
    response.set_cookie(
        COOKIE, value, max_age=max_age, httponly=True, samesite="Lax", path="/", secure=secure
    )
    if secure:  # browsers refuse SameSite=None without Secure
        response.set_cookie(
            PLAYER_COOKIE,
            value,
            max_age=max_age,
            httponly=True,
            samesite="None",
            path=PLAYER_PATH,
            secure=True,
        )


def start_session(response: Response, identity: Identity) -> None:
    """Remember the visitor (a new session unless the same identity is already signed in)."""
    visitor = current_visitor()
    if visitor is not None and visitor.identity == identity:
        keep_alive(response)
        return
    _set(response, services().sessions.new(identity))


def keep_alive(response: Response) -> None:
    """Slide the idle expiry of a visitor who is using the gateway (at most once a minute)."""
    visitor = current_visitor()
    refreshed = None if visitor is None else services().sessions.touched(visitor)
    if refreshed is not None:
        _set(response, refreshed)


def end_session(response: Response) -> None:
    secure = services().settings.gateway.secure_cookies
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax", secure=secure)
    if secure:
        response.delete_cookie(
            PLAYER_COOKIE, path=PLAYER_PATH, httponly=True, samesite="None", secure=True
        )
