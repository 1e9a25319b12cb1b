"""The gateway's own forms: a CSRF token bound to the browser, and the caller's IP.

A form carries a signed (nonce, purpose) and the browser a cookie with the same nonce, so a
post is accepted only from a page this gateway served to this browser, for this purpose (one
provider's sign-in, a paywall's "continue as", a logout). A cross-site page can neither read
the token nor set the cookie (``SameSite=Lax``, ``__Host-`` on https).
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Sequence
from typing import Any

from flask import Request, render_template, request
from itsdangerous import BadSignature, SignatureExpired
from werkzeug.wrappers import Response

from gateway.clientip import IPNetwork, client_ip
from gateway.cookies import FORM, CookieJar
from gateway.errors import BadRequest
from gateway.identity.base import PendingLogin
from gateway.signing import timed_serializer

FORM_MAX_AGE = 900
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{22}")


class FormExpired(BadRequest):
    code = "invalid_form"
    default_message = "The form expired; please try again."


class FormGuard:
    def __init__(self, purpose: str, secret_keys: Sequence[str], cookies: CookieJar) -> None:
        self._purpose = purpose
        self._signer = timed_serializer(secret_keys, "login-form")
        self._cookies = cookies

    def issue(self, current: str = "") -> tuple[str, str]:
        """(the form's csrf value, the nonce for the cookie). The browser's nonce is kept when
        it has one, so forms open in several tabs all stay valid."""
        nonce = current if _NONCE_RE.fullmatch(current) else secrets.token_urlsafe(16)
        return self._signer.dumps([nonce, self._purpose]), nonce

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """A page with a form for this purpose: its ``csrf`` value and the matching cookie."""
        csrf, nonce = self.issue(self._cookies.get(request, FORM))
        page = render_template(template, csrf=csrf, **context)
        response = Response(page, status=status, mimetype="text/html")
        self._cookies.set(response, FORM, nonce, FORM_MAX_AGE)
        return response

    def page(
        self, template: str, pending: PendingLogin, status: int = 200, **context: Any
    ) -> Response:
        """A sign-in form page for this provider, carrying the pending login."""
        return self.render(
            template,
            status,
            site=pending.site,
            return_url=pending.return_url,
            next=pending.next,
            provider=self._purpose,
            **context,
        )

    def check(self, request: Request) -> None:
        """Raise FormExpired unless the post carries this purpose's token and its cookie."""
        try:
            nonce, purpose = self._signer.loads(request.form.get("csrf", ""), max_age=FORM_MAX_AGE)
        except (SignatureExpired, BadSignature, ValueError, TypeError):
            raise FormExpired() from None
        cookie = self._cookies.get(request, FORM)
        if purpose != self._purpose or not hmac.compare_digest(
            cookie.encode(), str(nonce).encode()
        ):
            raise FormExpired()


def visitor_ip(request: Request, trusted_proxies: Sequence[IPNetwork]) -> str:
    return client_ip(
        request.remote_addr or "", request.headers.get("X-Forwarded-For"), trusted_proxies
    )
