"""The gateway's own login form for small teams and the demo, with rate-limited attempts."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Request
from werkzeug.wrappers import Response

from gateway.errors import TooManyRequests
from gateway.identity.base import Identity, PendingLogin
from gateway.identity.context import ProviderContext
from gateway.identity.forms import FormGuard, visitor_ip
from gateway.passwords import hash_password, verify_password
from gateway.settings import IdentitySettings

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
        self._forms = FormGuard(self.name, ctx.gateway.secret_keys, ctx.gateway.secure_cookies)
        # Checked when the account is unknown, so a miss costs as much time as a hit.
        self._decoy = hash_password(secrets.token_urlsafe(16))

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity:
        if request.method != "POST":
            return self._form(pending)
        return self._submit(request, pending)

    def _form(
        self, pending: PendingLogin, error: str = "", email: str = "", status: int = 200
    ) -> Response:
        return self._forms.page("login.html", pending, status, error=error, email=email)

    def _submit(self, request: Request, pending: PendingLogin) -> Response | Identity:
        self._forms.check(request)
        email = request.form.get("email", "").strip()[:254]
        password = request.form.get("password", "")[:1024]
        ip = visitor_ip(request, self._ctx.gateway.trusted_proxies)
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
