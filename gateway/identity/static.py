"""The gateway's own login form for small teams and the demo, with rate-limited attempts."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Request, render_template
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from gateway.errors import BadRequest, TooManyRequests
from gateway.identity.base import Identity, PendingLogin
from gateway.identity.context import ProviderContext
from gateway.passwords import hash_password, verify_password
from gateway.settings import IdentitySettings
from gateway.web.clientip import client_ip

FORM_COOKIE = "gw_form"
FORM_MAX_AGE = 900
ATTEMPTS_PER_ACCOUNT = 5  # a minute, for one account
ATTEMPTS_PER_IP = 20  # a minute, from one address


class StaticProvider:
    label = "Sign in with your password"

    def __init__(self, settings: IdentitySettings, ctx: ProviderContext) -> None:
        self.name = settings.name
        self.label = settings.options["label"] or self.label  # shown on the chooser
        self._users: dict[str, dict[str, Any]] = {
            u["email"].lower(): u for u in settings.options["users"]
        }
        self._ctx = ctx
        self._forms = URLSafeTimedSerializer(
            list(reversed(ctx.gateway.secret_keys)), salt="login-form"
        )
        # Checked when the account is unknown, so a miss costs as much time as a hit.
        self._decoy = hash_password(secrets.token_urlsafe(16))

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity:
        if request.method != "POST":
            return self._form(pending)
        return self._submit(request, pending)

    def _form(
        self, pending: PendingLogin, error: str = "", email: str = "", status: int = 200
    ) -> Response:
        nonce = secrets.token_urlsafe(16)
        page = render_template(
            "login.html",
            site=pending.site,
            return_url=pending.return_url,
            next=pending.next,
            provider=self.name,
            csrf=self._forms.dumps([nonce, self.name]),
            error=error,
            email=email,
        )
        response = Response(page, status=status, mimetype="text/html")
        response.set_cookie(
            FORM_COOKIE,
            nonce,
            max_age=FORM_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=self._ctx.gateway.secure_cookies,
            path="/sso/",
        )
        return response

    def _submit(self, request: Request, pending: PendingLogin) -> Response | Identity:
        self._check_csrf(request)
        email = request.form.get("email", "").strip()[:254]
        password = request.form.get("password", "")[:1024]
        ip = client_ip(
            request.remote_addr or "",
            request.headers.get("X-Forwarded-For"),
            self._ctx.gateway.trusted_proxies,
        )
        try:
            self._ctx.limiter.limit(f"login-ip:{self.name}:{ip}", ATTEMPTS_PER_IP, 60)
            self._ctx.limiter.limit(
                f"login-account:{self.name}:{email.lower()}", ATTEMPTS_PER_ACCOUNT, 60
            )
        except TooManyRequests:
            return self._form(
                pending, "Too many attempts. Wait a minute and try again.", email, status=429
            )
        user = self._users.get(email.lower())
        ok = verify_password(password, user["password_hash"] if user else self._decoy)
        if not (ok and user):
            return self._form(pending, "That e-mail and password do not match.", email, status=401)
        return Identity(
            email=user["email"],
            name=user.get("name", ""),
            groups=tuple(user.get("groups", ())),
            provider=self.name,
        )

    def _check_csrf(self, request: Request) -> None:
        """The form must come from a page this gateway served to this browser."""
        try:
            nonce, provider = self._forms.loads(request.form.get("csrf", ""), max_age=FORM_MAX_AGE)
        except (SignatureExpired, BadSignature, ValueError):
            raise BadRequest(
                "The sign-in form expired; please try again.", code="invalid_form"
            ) from None
        cookie = request.cookies.get(FORM_COOKIE, "")
        if provider != self.name or not hmac.compare_digest(cookie.encode(), str(nonce).encode()):
            raise BadRequest("The sign-in form expired; please try again.", code="invalid_form")
