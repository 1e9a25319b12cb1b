"""Who may open the console, and their session there.

Operators sign in through the identity named by ``[admin] identity``, through the one sign-in
flow visitors use (``/sso/_admin/login``, a name no site can have; redirect providers come
back through their own callback with that scope), always through the IdP: a visitor
session's groups are a snapshot, so a group removed there takes effect at the next sign-in.
The console's session is the same signed, revocable session as a visitor's
(``gateway.sessions``) with its own salt, cookie and revocations: ``gw_admin``,
``SameSite=Strict`` and sent only to ``/admin``, ending ``CONSOLE_IDLE`` after the last request
and ``CONSOLE_AGE`` after the sign-in, revoked in the store on sign-out, and dead with the IdP
session or subject when the IdP logs it out. The allow-list is checked again on every request,
so removing an e-mail from the config locks it out at once. Every POST carries a token of the
one CSRF guard, bound to that session's id.
"""

from __future__ import annotations

from flask import after_this_request, redirect, request
from werkzeug.wrappers import Response

from gateway.cookies import ADMIN
from gateway.csrf import FormGuard
from gateway.errors import Forbidden, NotFound
from gateway.identity.base import Identity
from gateway.logs import audit
from gateway.sessions import Sessions, SignedSession
from gateway.settings import AdminSettings
from gateway.web.current import runtime

SCOPE = "_admin"  # the pending-login "site" of a console sign-in (never a site's name)
LANDING = "/admin"


def settings() -> AdminSettings:
    found = runtime().settings.admin
    if found is None:
        raise NotFound()  # no console at all: /admin is like any unknown path
    return found


def _sessions() -> Sessions:
    found = runtime().console_sessions
    if found is None:
        raise NotFound()
    return found


def identity_name() -> str:
    return settings().identity


def complete(identity_name: str, identity: Identity) -> Response:
    """A provider vouched for someone: open the console if the allow-list names them."""
    admin = settings()
    if (
        identity_name != admin.identity
        or not identity.email_verified
        or not admin.admits(identity.email, identity.groups)
    ):
        audit("admin_refused", email=identity.email, provider=identity_name)
        raise Forbidden("This account may not open the operator console.", code="admin_refused")
    session = _sessions().new(identity)  # 503 when its sign-out could not be recorded
    audit("admin_signed_in", email=identity.email, provider=identity_name)
    response = redirect(LANDING, code=303)
    _set_cookie(response, session)
    return response


def _set_cookie(response: Response, session: SignedSession) -> None:
    sessions = _sessions()
    runtime().cookies.set(response, ADMIN, sessions.dump(session), sessions.codec.idle)


def current_operator() -> SignedSession | None:
    """The console session this request carries, live and still allowed, or None. A request
    a minute or more after the cookie was written slides its idle window on."""
    admin = settings()
    session = _sessions().load(runtime().cookies.get(request, ADMIN))
    if session is None:
        return None
    who = session.identity
    if who.provider != admin.identity or not admin.admits(who.email, who.groups):
        return None  # the config changed since: the allow-list decides again
    touched = _sessions().touched(session)
    if touched is not None:

        @after_this_request
        def slide(response: Response) -> Response:
            if runtime().cookies.name(ADMIN) not in response.headers.get("Set-Cookie", ""):
                _set_cookie(response, touched)  # unless this response signs out
            return response

    return session


def _guard() -> FormGuard:
    return FormGuard("console:admin", runtime().settings.gateway.secret_keys, runtime().cookies)


def csrf_token(operator: SignedSession) -> str:
    return _guard().token(operator.id)


def check_csrf(operator: SignedSession) -> None:
    _guard().check_bound(request.form.get("csrf", ""), operator.id)


def sign_out(operator: SignedSession, response: Response) -> None:
    _sessions().revoke(operator)
    runtime().cookies.delete(response, ADMIN)
    audit("admin_signed_out", email=operator.identity.email, provider=operator.identity.provider)
