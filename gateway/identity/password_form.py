"""The gateway's own password sign-in form, shared by every password provider (static, LDAP):
one CSRF token, one set of attempt limits, one audit trail.

Limits count *failed* attempts only (a successful sign-in never counts, so an office of
hundreds behind one NAT address signs in freely), all in the shared store:

* per (account, address): ``PER_ACCOUNT_AND_IP`` failures a minute. The attempt is counted
  before the password is checked and given back when it succeeds, so parallel guesses cannot
  all slip under the limit together.
* per account from everywhere: ``PER_ACCOUNT`` failures a minute, counted the same way. It is
  higher than anything one address can send at one account, so a stranger hammering from one
  address locks only their own (account, address) pair and never the owner elsewhere; only
  many addresses together can slow an account down.
* per client address, whatever the account: ``PER_IP`` failures a minute (password spraying).
  Checked before and counted after the check, so it can only ever hold back an address that
  has been failing.

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

PER_ACCOUNT_AND_IP = 5  # failures a minute
PER_IP = 20  # failures a minute, any accounts
PER_ACCOUNT = 30  # failures a minute, from all addresses together
WINDOW = 60.0  # seconds
MAX_USERNAME = 254
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class Refused:
    """Why a username and password did not sign in (audited, never shown as such)."""

    reason: str


class _Locked(Exception):
    def __init__(self, scope: str) -> None:
        self.scope = scope


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
        try:
            held = self._hold(account, ip)
        except _Locked as locked:
            self._audit("sign_in_locked", pending, username, ip, locked.scope)
            return self.page(
                pending, "Too many attempts. Wait a minute and try again.", username, 429
            )
        try:
            outcome, failed = self._verify(pending, username, password, ip, check)
        except BaseException:
            self._give_back(held)
            raise
        if failed:
            self._ctx.limiter.record(f"login-ip:{self._provider}:{ip}", WINDOW)
        else:
            self._give_back(held)  # success, or no password was checked: it does not count
        return outcome

    def _verify(
        self, pending: PendingLogin, username: str, password: str, ip: str, check: Checker
    ) -> tuple[Response | Identity, bool]:
        """The visitor's Identity or the form again, and whether a wrong password was given."""
        if not username or not password:
            # Never ask a directory about an empty password: an unauthenticated bind "succeeds".
            self._audit("sign_in_failed", pending, username, ip, "empty_credentials")
            return self.page(
                pending, f"Enter your {self._noun} and password.", username, 400
            ), False
        try:
            outcome = check(username, password)
        except SignInUnavailable:
            self._audit("sign_in_failed", pending, username, ip, "directory_unavailable")
            return self.page(pending, SignInUnavailable.default_message, username, 503), False
        if isinstance(outcome, Refused):
            self._audit("sign_in_failed", pending, username, ip, outcome.reason)
            message = f"That {self._noun} and password do not match."
            return self.page(pending, message, username, 401), True
        return outcome, False

    def _hold(self, account: str, ip: str) -> list[str]:
        """Refuse a locked address, pair or account; else count this attempt against the pair
        and the account (the counters are returned to give back if it succeeds)."""
        limiter = self._ctx.limiter
        try:
            limiter.check_open(f"login-ip:{self._provider}:{ip}", PER_IP, WINDOW)
        except TooManyRequests:
            raise _Locked("address") from None
        held: list[str] = []
        counted = (
            (
                "account_and_address",
                f"login-pair:{self._provider}:{account}:{ip}",
                PER_ACCOUNT_AND_IP,
            ),
            ("account", f"login-account:{self._provider}:{account}", PER_ACCOUNT),
        )
        for scope, key, count in counted:
            try:
                held.append(limiter.reserve(key, count, WINDOW))
            except TooManyRequests:
                self._give_back(held)
                raise _Locked(scope) from None
        return held

    def _give_back(self, held: list[str]) -> None:
        for key in held:
            self._ctx.limiter.release(key, WINDOW)

    def _audit(self, event: str, pending: PendingLogin, account: str, ip: str, reason: str) -> None:
        audit(
            event,
            site=pending.site,
            provider=self._provider,
            account=account,
            reason=reason,
            client_ip=ip,
        )
