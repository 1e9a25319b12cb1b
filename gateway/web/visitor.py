"""The visitor's gateway session cookie, read once per request."""

from __future__ import annotations

from flask import g, request
from werkzeug.wrappers import Response

from gateway.identity.base import Identity
from gateway.sessions import COOKIE, VisitorSession
from gateway.web.context import services


def current_visitor() -> VisitorSession | None:
    if "visitor" not in g:
        g.visitor = services().sessions.load(request.cookies.get(COOKIE))
    visitor: VisitorSession | None = g.visitor
    return visitor


def _set(response: Response, session: VisitorSession) -> None:
    svc = services()
    response.set_cookie(
        COOKIE,
        svc.sessions.dump(session),
        max_age=svc.sessions.max_age,
        httponly=True,
        samesite="Lax",
        path="/",
        secure=svc.settings.gateway.secure_cookies,
    )


def start_session(response: Response, identity: Identity) -> None:
    """Remember the visitor (a new session unless the same identity is already signed in)."""
    visitor = current_visitor()
    if visitor is not None and visitor.identity == identity:
        refreshed = services().sessions.touched(visitor)
        if refreshed is not None:
            _set(response, refreshed)
        return
    _set(response, services().sessions.new(identity))


def end_session(response: Response) -> None:
    response.delete_cookie(
        COOKIE,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=services().settings.gateway.secure_cookies,
    )
