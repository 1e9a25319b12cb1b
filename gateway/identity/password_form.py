"""The gateway's own password sign-in form, shared by every password provider (static, LDAP):
one CSRF token, one set of attempt limits, one audit trail.

Limits count attempts before the password is checked (atomically, in the shared store):

* per client address: ``PER_IP`` a minute, whatever the account;
* per (account, address): ``PER_ACCOUNT_AND_IP`` a minute;
* per account from everywhere: ``PER_ACCOUNT`` a minute. It is higher than anything one
  address can send at one account, so a stranger hammering from one address slows only
  themselves and can never lock the owner out elsewhere; only many addresses together can
  slow an account down.

Every failed sign-in and every lockout is an audit line with the site, the account as typed,
the provider, the reason and the client address (the request id is on every line); never the
password.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Request
from werkzeug.wrappers import Response

from gateway.errors import ServiceUnavailable, TooManyRequests
from gateway.identity.base import Identity, PendingLogin
from gateway.identity.context import ProviderContext
from gateway.identity.forms import FormGuard, visitor_ip
from gateway.logs import audit

PER_ACCOUNT_AND_IP = 5  # a minute
PER_IP = 20  # a minute
PER_ACCOUNT = 30  # a minute, from all addresses together
MAX_USERNAME = 254
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class Refused:
    """Why a username and password did not sign in (audited, never shown as such)."""

    reason: str


class SignInUnavailable(ServiceUnavailable):
    code = "sign_in_unavailable"
    default_message = "Sign-in is unavailable right now. Please try again in a moment."


Checker = Callable[[str, str], Identity | Refused]


class PasswordForm:
    def __init__(
        self,
        provider: str,
        ctx: ProviderContext,
        *,
        username_label: str = "E-mail",
        username_hint: str = "Use the e-mail address and password you were given.",
    ) -> None:
        self._provider = provider
        self._ctx = ctx
        self._guard = FormGuard(provider, ctx.gateway.secret_keys, ctx.cookies)
        self._label = username_label
        self._noun = username_label.lower()
        self._hint = username_hint

    def page(
        self, pending: PendingLogin, error: str = "", username: str = "", status: int = 200
    ) -> Response:
        return self._guard.page(
            "login.html",
            pending,
            status,
            error=error,
            email=username,
            username_label=self._label,
            hint=self._hint,
        )

    def submit(
        self, request: Request, pending: PendingLogin, check: Checker
    ) -> Response | Identity:
        """Check a posted form: the visitor's Identity, or the form again with the reason."""
        self._guard.check(request)
        username = request.form.get("email", "").strip()[:MAX_USERNAME]
        password = request.form.get("password", "")[:MAX_PASSWORD]
        ip = visitor_ip(request, self._ctx.gateway.trusted_proxies)
        account = username.lower()
        limits = (
            ("address", f"login-ip:{self._provider}:{ip}", PER_IP),
            (
                "account_and_address",
                f"login-pair:{self._provider}:{account}:{ip}",
                PER_ACCOUNT_AND_IP,
            ),
            ("account", f"login-account:{self._provider}:{account}", PER_ACCOUNT),
        )
        for scope, key, count in limits:
            try:
                self._ctx.limiter.limit(key, count, 60)
            except TooManyRequests:
                self._audit("sign_in_locked", pending, username, ip, scope)
                return self.page(
                    pending, "Too many attempts. Wait a minute and try again.", username, 429
                )
        if not username or not password:
            # Never ask a directory about an empty password: an unauthenticated bind "succeeds".
            self._audit("sign_in_failed", pending, username, ip, "empty_credentials")
            return self.page(pending, f"Enter your {self._noun} and password.", username, 400)
        try:
            outcome = check(username, password)
        except SignInUnavailable:
            self._audit("sign_in_failed", pending, username, ip, "directory_unavailable")
            return self.page(pending, SignInUnavailable.default_message, username, 503)
        if isinstance(outcome, Refused):
            self._audit("sign_in_failed", pending, username, ip, outcome.reason)
            message = f"That {self._noun} and password do not match."
            return self.page(pending, message, username, 401)
        return outcome

    def _audit(self, event: str, pending: PendingLogin, account: str, ip: str, reason: str) -> None:
        audit(
            event,
            site=pending.site,
            provider=self._provider,
            account=account,
            reason=reason,
            client_ip=ip,
        )
