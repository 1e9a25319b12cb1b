"""The gateway's own sign-in forms: a CSRF token bound to the browser, and the caller's IP.

A form carries a signed (nonce, provider) and the browser a cookie with the same nonce, so a
post is accepted only from a page this gateway served to this browser, for this provider.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from typing import Any

from flask import Request, render_template
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from gateway.errors import BadRequest
from gateway.identity.base import PendingLogin
from gateway.settings import IPNetwork
from gateway.web.clientip import client_ip

FORM_COOKIE = "gw_form"
FORM_MAX_AGE = 900


class FormGuard:
    def __init__(self, provider: str, secret_keys: Sequence[str], secure_cookies: bool) -> None:
        self._provider = provider
        self._signer = URLSafeTimedSerializer(list(reversed(secret_keys)), salt="login-form")
        self._secure = secure_cookies

    def issue(self) -> tuple[str, str]:
        """(the form's csrf value, the nonce for the cookie)."""
        nonce = secrets.token_urlsafe(16)
        return self._signer.dumps([nonce, self._provider]), nonce

    def set_cookie(self, response: Response, nonce: str) -> None:
        response.set_cookie(
            FORM_COOKIE,
            nonce,
            max_age=FORM_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=self._secure,
            path="/sso/",
        )

    def page(
        self, template: str, pending: PendingLogin, status: int = 200, **context: Any
    ) -> Response:
        """A sign-in form page for this provider, with its CSRF token and cookie."""
        csrf, nonce = self.issue()
        page = render_template(
            template,
            site=pending.site,
            return_url=pending.return_url,
            next=pending.next,
            provider=self._provider,
            csrf=csrf,
            **context,
        )
        response = Response(page, status=status, mimetype="text/html")
        self.set_cookie(response, nonce)
        return response

    def check(self, request: Request) -> None:
        expired = BadRequest("The sign-in form expired; please try again.", code="invalid_form")
        try:
            nonce, provider = self._signer.loads(request.form.get("csrf", ""), max_age=FORM_MAX_AGE)
        except (SignatureExpired, BadSignature, ValueError):
            raise expired from None
        cookie = request.cookies.get(FORM_COOKIE, "")
        if provider != self._provider or not hmac.compare_digest(
            cookie.encode(), str(nonce).encode()
        ):
            raise expired


def visitor_ip(request: Request, trusted_proxies: Sequence[IPNetwork]) -> str:
    return client_ip(
        request.remote_addr or "", request.headers.get("X-Forwarded-For"), trusted_proxies
    )
