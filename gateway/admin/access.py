"""Who may open the console, and their session there.

Operators sign in through the identity named by ``[admin] identity``, with the same provider
code visitors use (the provider's forms post to ``/sso/_admin/login``, a name no site can
have; redirect providers come back through their own callback with that scope). The console
then has its own session: a signed ``gw_admin`` cookie, ``SameSite=Strict`` and sent only to
``/admin``, that ends after ``SESSION_IDLE`` without a request and ``SESSION_AGE`` after the
sign-in, is revoked in the store on sign-out, and dies with the IdP session or subject when
the IdP logs it out (OIDC back-channel logout, SAML single logout), as visitor sessions do.
Every console sign-in goes through the IdP (never a visitor session's snapshot), so a group
removed there takes effect at the next one. The allow-list is checked again on every request,
so removing an e-mail from the config locks it out at once. Every POST carries a token bound
to that session (CSRF).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import after_this_request, redirect, request
from itsdangerous import BadSignature
from werkzeug.wrappers import Response

from gateway.cookies import ADMIN
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.identity.base import IdentifiesEachRequest, Identity, PendingLogin
from gateway.logs import audit
from gateway.settings import AdminSettings
from gateway.signing import serializer, timed_serializer
from gateway.store import refused
from gateway.web.current import limit_pending_sign_ins, runtime

SCOPE = "_admin"  # the pending-login "site" of a console sign-in (never a site's name)
SESSION_AGE = 8 * 3600  # seconds from the sign-in
SESSION_IDLE = 15 * 60  # seconds without a console request
REFRESH_AFTER = 60  # seconds before a request slides the idle window on (a new cookie)


@dataclass(frozen=True)
class Operator:
    email: str
    name: str
    provider: str
    groups: tuple[str, ...]
    id: str
    issued: int = 0  # Unix seconds of the sign-in
    subject: str = ""  # the IdP's ids of the person and session, for IdP logouts
    idp_session: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"e": self.email, "n": self.name, "p": self.provider, "g": list(self.groups)} | {
            "i": self.id,
            "t": self.issued,
            "u": self.subject,
            "s": self.idp_session,
        }

    @classmethod
    def from_json(cls, data: Any) -> Operator:
        return cls(
            str(data["e"]),
            str(data["n"]),
            str(data["p"]),
            tuple(str(g) for g in data["g"]),
            str(data["i"]),
            int(data["t"]),
            str(data.get("u", "")),
            str(data.get("s", "")),
        )


def settings() -> AdminSettings:
    found = runtime().settings.admin
    if found is None:
        raise NotFound()  # no console at all: /admin is like any unknown path
    return found


def _signer() -> Any:
    return timed_serializer(runtime().settings.gateway.secret_keys, "admin-session")


def login() -> Response:
    """``/sso/_admin/login``: the console's sign-in through its one identity provider."""
    admin = settings()
    provider = runtime().providers[admin.identity]
    if isinstance(provider, IdentifiesEachRequest):
        proxied = provider.identify(request)
        if proxied is not None:
            return complete(admin.identity, proxied)
    # Always through the IdP, never a visitor session: its groups are a snapshot.
    limit_pending_sign_ins(SCOPE)
    outcome = provider.begin(request, PendingLogin(SCOPE, "/admin", ""))
    if isinstance(outcome, Identity):
        return complete(admin.identity, outcome)
    return outcome


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
    operator = Operator(
        identity.email,
        identity.name,
        identity_name,
        tuple(g for g in identity.groups if g in admin.allow_groups),  # all the console needs
        secrets.token_urlsafe(12),
        int(time.time()),
        identity.subject,
        identity.idp_session,
    )
    if not runtime().store.has_room("admin-revoked"):
        raise refused("admin-revoked")  # its sign-out could not be recorded
    audit("admin_signed_in", email=operator.email, provider=identity_name)
    response = redirect("/admin", code=303)
    _set_cookie(response, operator)
    return response


def _set_cookie(response: Response, operator: Operator) -> None:
    left = max(1, min(SESSION_IDLE, operator.issued + SESSION_AGE - int(time.time())))
    runtime().cookies.set(response, ADMIN, _signer().dumps(operator.to_json()), left)


def current_operator() -> Operator | None:
    """The operator this request carries a live console session for, or None. A request
    more than REFRESH_AFTER seconds after the cookie was written slides its idle window."""
    admin = settings()
    raw = runtime().cookies.get(request, ADMIN)
    if not raw:
        return None
    try:
        data, written = _signer().loads(raw, max_age=SESSION_IDLE, return_timestamp=True)
        operator = Operator.from_json(data)
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    now = time.time()
    if now - operator.issued > SESSION_AGE:
        return None  # past its absolute lifetime: sign in through the IdP again
    if operator.provider != admin.identity or not admin.admits(operator.email, operator.groups):
        return None  # the config changed since: the allow-list decides again
    if runtime().store.get(f"admin-revoked:{operator.id}"):
        return None
    if runtime().sessions.revoked_at_idp(
        operator.provider, operator.subject, operator.idp_session, operator.issued
    ):
        return None  # the IdP logged this person or session out
    if now - written.timestamp() > REFRESH_AFTER:

        @after_this_request
        def slide(response: Response) -> Response:
            if runtime().cookies.name(ADMIN) not in response.headers.get("Set-Cookie", ""):
                _set_cookie(response, operator)  # unless this response signs out
            return response

    return operator


def csrf_token(operator: Operator) -> str:
    return str(serializer(runtime().settings.gateway.secret_keys, "admin-csrf").dumps(operator.id))


def check_csrf(operator: Operator) -> None:
    given = request.form.get("csrf", "")
    if not hmac.compare_digest(given.encode(), csrf_token(operator).encode()):
        raise BadRequest("The form expired; please try again.", code="invalid_form")


def sign_out(operator: Operator, response: Response) -> None:
    runtime().store.set(f"admin-revoked:{operator.id}", int(time.time()), ttl=SESSION_AGE)
    runtime().cookies.delete(response, ADMIN)
    audit("admin_signed_out", email=operator.email, provider=operator.provider)
