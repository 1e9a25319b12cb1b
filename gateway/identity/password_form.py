"""The gateway's own password sign-in form, shared by every password provider (static, LDAP):
one CSRF token, one set of attempt limits, one audit trail.

Limits count *failed* attempts only (a successful sign-in never counts, so an office of
hundreds behind one NAT address signs in freely), all in the shared store:

* per (account, address): ``PER_ACCOUNT_AND_IP`` failures a minute. The attempt is counted
  before the password is checked and given back when it succeeds, so parallel guesses cannot
  all slip under the limit together.
* per account from everywhere: ``PER_ACCOUNT`` failures a minute, counted the same way. It is
  higher than anything one address can send at one account, so a stranger hammering from one
  address locks only their own (account, address) pair and never the owner elsewhere. A
  browser that has signed in as the account before carries a signed *device cookie* (OWASP's
  "device cookies") and passes this limit, so even many addresses together slow strangers
  only.
* per client address, whatever the account: ``PER_IP`` failures a minute (password spraying).
  An IPv6 client counts by its /64, the block one customer is handed.
  Checked before and counted after the check, so it can only ever hold back an address that
  has been failing.

Every failed sign-in and every lockout is an audit line with the site, the account as typed,
the provider, the reason and the client address (the request id is on every line); never the
password.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Request, after_this_request
from itsdangerous import BadSignature
from werkzeug.wrappers import Response

from gateway.clientip import client_bucket, visitor_ip
from gateway.cookies import DEVICE
from gateway.csrf import FormGuard
from gateway.errors import ServiceUnavailable, TooManyRequests
from gateway.identity.base import Identity, Page, PendingLogin
from gateway.identity.provider_context import ProviderContext
from gateway.logs import audit
from gateway.ratelimit import RateLimiter
from gateway.signing import timed_serializer
from gateway.store import StateFull, Store, StoreUnavailable

LOCKOUTS = "lockouts:recent"  # the store list the console reads
PER_ACCOUNT_AND_IP = 5  # failures a minute
PER_IP = 20  # failures a minute, any accounts
PER_ACCOUNT = 30  # failures a minute, from all addresses together
WINDOW = 60.0  # seconds
DEVICE_AGE = 180 * 86400  # seconds a device cookie vouches for its browser
DEVICE_ACCOUNTS = 5  # accounts one device cookie remembers
MAX_USERNAME = 254
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class Refused:
    """Why a username and password did not sign in (audited, never shown as such)."""

    reason: str


class _Locked(Exception):
    def __init__(self, scope: str, limit: str) -> None:
        self.scope = scope
        self.limit = limit  # the limit's name, for the console's list of lockouts


class SignInUnavailable(ServiceUnavailable, code="sign_in_unavailable"):
    """Sign-in is unavailable right now. Please try again in a moment."""


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
        self._devices = timed_serializer(ctx.gateway.secret_keys, "device")
        self._label = username_label
        self._noun = username_label.lower()
        self._hint = username_hint

    def page(
        self, pending: PendingLogin, error: str = "", username: str = "", status: int = 200
    ) -> Page:
        return Page.sign_in_form(
            "login.html",
            self._provider,
            pending,
            status,
            error=error,
            email=username,
            username_label=self._label,
            hint=self._hint,
        )

    def answer(self, request: Request, pending: PendingLogin, check: Checker) -> Page | Identity:
        """A provider's whole sign-in: the form on GET, its check on POST."""
        if request.method != "POST":
            return self.page(pending)
        return self.submit(request, pending, check)

    def submit(self, request: Request, pending: PendingLogin, check: Checker) -> Page | Identity:
        """Check a posted form: the visitor's Identity, or the form again with the reason."""
        self._guard.check(request)
        username = request.form.get("email", "").strip()[:MAX_USERNAME]
        password = request.form.get("password", "")[:MAX_PASSWORD]
        ip = visitor_ip(request, self._ctx.gateway.trusted_proxies)
        account = username.lower()
        bucket = client_bucket(ip)
        known_device = self._device_knows(request, account)
        try:
            held = self._hold(account, bucket, known_device)
        except _Locked as locked:
            self._audit("sign_in_locked", pending, username, ip, locked.scope)
            self._note_lockout(locked, account, bucket)
            return self.page(
                pending, "Too many attempts. Wait a minute and try again.", username, 429
            )
        try:
            outcome, failed = self._verify(pending, username, password, ip, check)
        except BaseException:
            self._give_back(held)
            raise
        if failed:
            self._ctx.limiter.record(self._address_key(bucket), WINDOW)
        else:
            self._give_back(held)  # success, or no password was checked: it does not count
        if isinstance(outcome, Identity):
            self._remember_device(request, account)
        return outcome

    def _verify(
        self, pending: PendingLogin, username: str, password: str, ip: str, check: Checker
    ) -> tuple[Page | Identity, bool]:
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

    def _hold(self, account: str, ip: str, known_device: bool) -> list[str]:
        """Refuse a locked address (``ip``: its client_bucket), pair or account; else count
        this attempt against the pair and the account (returned, to give back if it succeeds).
        A browser that signed in as the account before is not held back by the account's
        limit: strangers elsewhere cannot lock its owner out."""
        limiter = self._ctx.limiter
        try:
            limiter.check_open(self._address_key(ip), PER_IP, WINDOW)
        except TooManyRequests:
            raise _Locked("address", self._address_key(ip)) from None
        held: list[str] = []
        counted = (
            (
                "account_and_address",
                f"login-pair:{self._provider}:{account}:{ip}",
                PER_ACCOUNT_AND_IP,
            ),
            ("account", f"login-account:{self._provider}:{account}", PER_ACCOUNT),
        )
        for scope, key, count in counted[: 1 if known_device else 2]:
            try:
                held.append(limiter.reserve(key, count, WINDOW))
            except TooManyRequests:
                self._give_back(held)
                raise _Locked(scope, key) from None
        return held

    def _note_lockout(self, locked: _Locked, account: str, bucket: str) -> None:
        """For the console's list of lockouts (an operator may lift one): once a minute per
        limit, so that hammering a lock cannot push other lockouts off the list."""
        with contextlib.suppress(StoreUnavailable, StateFull):
            if not self._ctx.store.add(f"lockout-noted:{locked.limit}", 1, ttl=WINDOW):
                return
        now = time.time()
        entry = {"limit": locked.limit, "scope": locked.scope, "provider": self._provider}
        entry |= {"account": account if locked.scope != "address" else "", "address": bucket}
        noted = [entry | {"at": now, "until": now + WINDOW}]
        with contextlib.suppress(StoreUnavailable, StateFull):
            self._ctx.store.append(LOCKOUTS, noted, 500, 10 * WINDOW)
            if entry["account"]:  # found by the account too, however many others are locked
                self._ctx.store.append(_lockouts_of(account), noted, 20, 10 * WINDOW)

    def _address_key(self, bucket: str) -> str:
        return f"login-ip:{self._provider}:{bucket}"

    def _device_accounts(self, request: Request) -> list[str]:
        raw = self._ctx.cookies.get(request, DEVICE)
        try:
            accounts = self._devices.loads(raw, max_age=DEVICE_AGE) if raw else []
        except BadSignature:
            return []
        return [a for a in accounts if isinstance(a, str)] if isinstance(accounts, list) else []

    def _device_digest(self, account: str) -> str:
        return hashlib.sha256(f"{self._provider}\0{account}".encode()).hexdigest()[:32]

    def _device_knows(self, request: Request, account: str) -> bool:
        wanted = self._device_digest(account)
        return any(hmac.compare_digest(wanted, a) for a in self._device_accounts(request))

    def _remember_device(self, request: Request, account: str) -> None:
        """After a good password: this browser vouches for the account from now on (the
        cookie is set on whatever response the sign-in ends with)."""
        digest = self._device_digest(account)
        others = [a for a in self._device_accounts(request) if a != digest]
        value = self._devices.dumps([digest, *others][:DEVICE_ACCOUNTS])

        @after_this_request
        def set_device(response: Response) -> Response:
            self._ctx.cookies.set(response, DEVICE, value, DEVICE_AGE)
            return response

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


LIMITS = {"account_and_address": PER_ACCOUNT_AND_IP, "account": PER_ACCOUNT, "address": PER_IP}


def _lockouts_of(account: str) -> str:
    return "lockouts:of:" + hashlib.sha256(account.strip().lower().encode()).hexdigest()[:40]


def current_lockouts(store: Store, limiter: RateLimiter, account: str = "") -> list[dict[str, Any]]:
    """Lockouts still in force, newest first, one per limit (the console's list; with
    ``account``, that account's, however many others there are), each with the failures its
    limit counts over the last minute (``count``) and the limit (``of``)."""
    now = time.time()
    seen: dict[str, dict[str, Any]] = {}
    for entry in store.newest(_lockouts_of(account) if account else LOCKOUTS, 500):
        if isinstance(entry, dict) and isinstance(entry.get("limit"), str):
            seen.setdefault(entry["limit"], entry)
    live = [e for e in seen.values() if float(e.get("until", 0)) > now]
    lifted = store.get_many([f"lockout-lifted:{e['limit']}" for e in live])
    return [
        e | {"count": round(limiter.counted(e["limit"], WINDOW, now)), "of": LIMITS.get(e["scope"])}
        for e, at in zip(live, lifted, strict=True)
        if not _lifted_since(at, e)
    ]


def lift_lockout(
    store: Store, limiter: RateLimiter, limit: str, account: str = ""
) -> dict[str, Any] | None:
    """Lift one listed lockout (only a listed one: never an arbitrary store key), from the
    whole list or from ``account``'s."""
    listed = current_lockouts(store, limiter, account)
    entry = next((e for e in listed if e["limit"] == limit), None)
    if entry is None:
        return None
    limiter.lift(limit, WINDOW)
    store.set(f"lockout-lifted:{limit}", float(entry["at"]), ttl=10 * WINDOW)
    store.delete(f"lockout-noted:{limit}")  # locked again, it is listed again
    return entry


def _lifted_since(at: Any, entry: dict[str, Any]) -> bool:
    return isinstance(at, int | float) and float(entry.get("at", 0)) <= at
