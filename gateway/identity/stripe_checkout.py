"""Stripe Checkout grants site access, through the official ``stripe`` library.

Entry: a "subscribe to watch" page whose form creates a Checkout Session for the configured
price (``client_reference_id`` names the pending login, kept in the shared store; a signed
cookie binds it to this browser). Return: the success URL makes the gateway *retrieve* the
session (no waiting for a webhook), require it complete and paid for the price, record the
entitlement and continue the handoff. Webhooks (``POST /webhooks/stripe``) keep entitlements
current afterwards; every event is answered by re-reading the object from Stripe, so order and
duplicates do not matter. The signature (Stripe's scheme, checked by the ``stripe`` library,
300 s tolerance) must match this identity's webhook secret; each event id is applied once, and
when Stripe cannot be reached the event is forgotten and answered 502, so Stripe's retry
applies it later.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import stripe
from flask import Request, jsonify, redirect
from itsdangerous import BadSignature
from pydantic import Field, model_validator
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response

from gateway.clientip import client_bucket, visitor_ip
from gateway.cookies import CHECKOUT
from gateway.csrf import FormGuard
from gateway.emails import email_domain
from gateway.entitlements import EntitlementStore, Grant
from gateway.errors import BadRequest, GatewayError
from gateway.identity.base import (
    Completed,
    Identity,
    Notice,
    Page,
    PendingLogin,
    Route,
    Shown,
    login_url,
    step_path,
)
from gateway.identity.provider_context import ProviderBase, ProviderContext
from gateway.logs import audit
from gateway.settings_fields import (
    Flag,
    IdentityModel,
    Integer,
    OptionalUrl,
    RequiredSecret,
    RequiredText,
    Strings,
    Text,
    problem,
)
from gateway.signing import timed_serializer

log = logging.getLogger("gateway.stripe")

stripe.enable_telemetry = False  # no request metrics sent back to Stripe

MAX_EVENT_BYTES = 512 * 1024  # Stripe's events are far smaller
PENDING_TTL = 86400  # a visitor may take a day between "subscribe" and paying
PLANS_TTL = 600.0  # seconds the plans' amounts and intervals are kept
MAX_PENDING = 5
GRANTING = frozenset({"active", "trialing"})
_SESSION_ID_RE = re.compile(r"cs_[A-Za-z0-9_]{1,250}")
_OBJECT_ID_RE = re.compile(r"[a-z]{2,8}_[A-Za-z0-9_]{1,250}")


@dataclass(frozen=True)
class Plan:
    """One plan on the subscribe page: its price id and what Stripe says it costs."""

    price: str
    amount: int | None = None  # in the currency's smallest unit
    currency: str = ""
    interval: str = ""  # month, year... ("" for a one-off payment)


class StripeSettings(IdentityModel):
    type: Literal["stripe"]
    secret_key: RequiredSecret
    webhook_secret: RequiredSecret
    price: Text = ""  # one Stripe price id (or prices: several plans)
    prices: Strings = ()  # the plans the subscribe page offers (monthly, yearly...)
    product: RequiredText  # the entitlement it grants (a site's require_entitlement)
    trial_days: Integer = Field(0, ge=0, le=730)  # >0: subscription_data.trial_period_days
    allow_promotion_codes: Flag = False  # Checkout's promotion-code field
    portal: Flag = False  # /account/<site> offers Stripe's customer portal to subscribers
    grace_days: Integer = Field(3, ge=0, le=60)  # how long past_due keeps access
    api_base: OptionalUrl = ""  # only to point the library at a stand-in
    mode: Literal["subscription", "payment"] = "subscription"

    @model_validator(mode="after")
    def _some_price(self) -> StripeSettings:
        if not self.price and not self.prices:
            raise problem("give price (one plan) or prices (several)")
        return self


class PaymentProviderUnavailable(GatewayError, status=502, code="payment_provider_unavailable"):
    """The payment service is unavailable. Please try again shortly."""


class CheckoutNotPaid(BadRequest, code="checkout_not_paid"):
    """This checkout is not paid (yet). Please complete the payment."""


class CheckoutUnknown(BadRequest, code="invalid_checkout"):
    """This checkout link is not valid. Please start again."""


class CheckoutNotInThisBrowser(GatewayError):
    """Paid, but in another browser (or the cookie is gone): the visitor signs in instead."""

    status = 200
    code = "payment_received"
    default_message = (
        "Your payment was received and your subscription is active. Sign in with the e-mail "
        "address you paid with to watch."
    )


def _get(obj: Any, *path: str | int) -> Any:
    """A value deep in a Stripe object (or a plain dict); None when any step is missing."""
    for key in path:
        if obj is None or isinstance(obj, str):
            return None
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


def _price_ids(items: Any) -> set[str]:
    prices = set()
    for item in _get(items, "data") or []:
        price = _get(item, "price")
        prices.add(price if isinstance(price, str) else _get(price, "id"))
    return {p for p in prices if isinstance(p, str)}


class StripeCheckoutProvider(ProviderBase[StripeSettings]):
    label = "Subscribe to watch"
    kind = "stripe"
    webhook_kind = "stripe"
    sells_entitlements = True

    def __init__(self, settings: StripeSettings, ctx: ProviderContext) -> None:
        super().__init__(settings, ctx)
        self.grant_source = f"stripe:{self.name}"  # the source of the grants it records
        self.product = settings.product
        self._webhook_secret = settings.webhook_secret
        timeout = (ctx.gateway.upstream_connect_timeout, ctx.gateway.upstream_read_timeout)
        self.client = stripe.StripeClient(
            settings.secret_key.get_secret_value(),
            base_addresses={"api": settings.api_base} if settings.api_base else None,
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=1,
        )
        self._refs = timed_serializer(ctx.gateway.secret_keys, f"stripe-checkout:{self.name}")
        self._plans: tuple[float, list[Plan]] | None = None
        self._forms = FormGuard(self.name, ctx.gateway.secret_keys, ctx.cookies)
        base = ctx.gateway.public_url
        # Stripe fills in {CHECKOUT_SESSION_ID} itself.
        self.success_url = (
            base + step_path(self.kind, self.name, "return") + "?session_id={CHECKOUT_SESSION_ID}"
        )
        self.cancel_url = base + step_path(self.kind, self.name, "cancel")

    @property
    def entitlements(self) -> EntitlementStore:
        store = self._ctx.entitlements
        assert store is not None  # built whenever a stripe identity is configured
        return store

    def routes(self) -> dict[str, Route]:
        return {
            "return": Route(("GET",), lambda request: Completed(*self.complete(request))),
            "cancel": Route(("GET",), self.cancelled),
        }

    # ------------------------------------------------------------------ entry

    @property
    def offered(self) -> tuple[str, ...]:
        """The price ids a visitor may choose (``prices``, else the one ``price``)."""
        return self._settings.prices or (self._settings.price,)

    def plans(self) -> list[Plan]:
        """The offered plans as Stripe describes them (amount, currency, interval), read once
        every PLANS_TTL seconds; a plan Stripe cannot describe is shown by its id."""
        now = time.monotonic()
        if self._plans is None or now - self._plans[0] > PLANS_TTL:
            self._plans = (now, [self._plan(price) for price in self.offered])
        return self._plans[1]

    def _plan(self, price: str) -> Plan:
        try:
            found = self.client.v1.prices.retrieve(price)
        except stripe.StripeError as exc:
            log.warning("stripe price unreadable", extra={"reason": type(exc).__name__})
            return Plan(price)
        amount = _get(found, "unit_amount")
        return Plan(
            price,
            amount if isinstance(amount, int) else None,
            str(_get(found, "currency") or "").upper(),
            str(_get(found, "recurring", "interval") or ""),
        )

    def begin(self, request: Request, pending: PendingLogin) -> Shown | Identity:
        if request.method != "POST":
            return self._page(pending)
        self._forms.check(request)
        price = request.form.get("price", "") if len(self.offered) > 1 else self.offered[0]
        if price not in self.offered:  # refused before any call to Stripe
            return self._page(pending, "Choose one of the plans.", 400)
        email = request.form.get("email", "").strip()
        if email and email_domain(email) is None:
            return self._page(pending, "That does not look like an e-mail address.", 400)
        ip = visitor_ip(request, self._ctx.gateway.trusted_proxies)
        self._ctx.limiter.limit(f"checkout:{self.name}:{client_bucket(ip)}", 10, 60)
        ref = secrets.token_urlsafe(24)
        params: Any = {
            "mode": self._settings.mode,
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": self.success_url,
            "cancel_url": f"{self.cancel_url}?ref={ref}",
            "client_reference_id": ref,
        }
        if email:
            params["customer_email"] = email
        if self._settings.trial_days and self._settings.mode == "subscription":
            params["subscription_data"] = {"trial_period_days": self._settings.trial_days}
        if self._settings.allow_promotion_codes:
            params["allow_promotion_codes"] = True
        # One checkout per attempt even when the library retries (its reference is unique).
        once: Any = {"idempotency_key": f"checkout-{ref}"}
        checkout = self._call(
            lambda: self.client.v1.checkout.sessions.create(params=params, options=once)
        )
        url = self._page_url(checkout)
        self._ctx.store.set(f"checkout:{ref}", pending.to_json(), ttl=PENDING_TTL)
        response = redirect(url, code=303)
        refs = [*self._browser_refs(request), ref][-MAX_PENDING:]
        self._ctx.cookies.set(response, CHECKOUT, self._refs.dumps(refs), PENDING_TTL)
        return response

    def _page(self, pending: PendingLogin, error: str = "", status: int = 200) -> Page:
        plans = self.plans() if len(self.offered) > 1 else []
        return Page.sign_in_form(
            "subscribe.html", self.name, pending, status, error=error, plans=plans
        )

    def _browser_refs(self, request: Request) -> list[str]:
        try:
            refs = self._refs.loads(self._ctx.cookies.get(request, CHECKOUT), max_age=PENDING_TTL)
        except BadSignature:
            return []
        return [r for r in refs if isinstance(r, str)] if isinstance(refs, list) else []

    def pending_for(self, ref: str) -> PendingLogin | None:
        return PendingLogin.from_json(self._ctx.store.get(f"checkout:{ref}") if ref else None)

    def cancelled(self, request: Request) -> Notice:
        """Stripe's cancel URL: nothing was charged; offer the way back to the sign-in."""
        pending = self.pending_for(request.args.get("ref", "")[:64])
        retry = login_url(self._ctx.gateway.public_url, pending) if pending is not None else None
        return Notice(
            200,
            "checkout_cancelled",
            "You left the payment page before paying. Nothing was charged.",
            title="Payment cancelled",
            retry_url=retry,
        )

    # ------------------------------------------------------------------ return

    def complete(self, request: Request) -> tuple[Identity, PendingLogin]:
        session_id = request.args.get("session_id", "")
        if not _SESSION_ID_RE.fullmatch(session_id):
            raise CheckoutUnknown()
        checkout = self._retrieve_checkout(session_id)
        grant = self.grant_for_checkout(checkout)
        if grant is None or not grant.active:
            audit("paywall_refused", identity=self.name, reason=CheckoutNotPaid.code)
            raise CheckoutNotPaid()
        self.entitlements.record(grant)
        ref = _get(checkout, "client_reference_id")
        pending = self.pending_for(ref) if isinstance(ref, str) else None
        if pending is None or ref not in self._browser_refs(request):
            raise CheckoutNotInThisBrowser()
        name = _get(checkout, "customer_details", "name")
        customer = _customer_id(checkout)
        identity = Identity(
            email=grant.email,
            name=name if isinstance(name, str) else "",
            provider=self.name,
            # The payer's Stripe customer, in their signed session: the portal opens for it.
            subject=customer or "",
            # Stripe does not verify the address a payer types: it opens what was bought (this
            # checkout's own grant, asked about on every decision) and nothing else that
            # address holds.
            email_proven=False,
            grant=(grant.source, grant.ref),
        )
        return identity, pending

    @property
    def offers_portal(self) -> bool:
        """``portal = true``: subscribers may manage their subscription at Stripe."""
        return bool(self._settings.portal)

    def portal_url(self, customer: str, return_url: str) -> str:
        """A customer-portal session for this customer (cancel, change plan, update the card),
        coming back to ``return_url``."""
        params: Any = {"customer": customer, "return_url": return_url}
        portal = self._call(lambda: self.client.v1.billing_portal.sessions.create(params=params))
        return self._page_url(portal)

    def _page_url(self, made: Any) -> str:
        """The Stripe page a checkout or portal session sends the visitor to. Stripe's own
        pages are https; only a configured stand-in (tests) may differ."""
        url = _get(made, "url")
        if not isinstance(url, str) or not (url.startswith("https://") or self._settings.api_base):
            raise PaymentProviderUnavailable()
        return url

    def _retrieve_checkout(self, session_id: str) -> Any:
        return self._call(
            lambda: self.client.v1.checkout.sessions.retrieve(
                session_id, params={"expand": ["line_items", "subscription", "customer"]}
            )
        )

    # ------------------------------------------------------------------ what Stripe says

    def grant_for_checkout(self, checkout: Any) -> Grant | None:
        """The entitlement a checkout session gives, or None when it is not for our price."""
        if not set(self.offered) & _price_ids(_get(checkout, "line_items")):
            return None
        email = self._checkout_email(checkout)
        if email is None:
            return None
        paid = _get(checkout, "status") == "complete" and _get(checkout, "payment_status") in (
            "paid",
            "no_payment_required",
        )
        subscription = _get(checkout, "subscription")
        if paid and subscription is not None and not isinstance(subscription, str):
            return self.grant_for_subscription(subscription, email)
        if paid and isinstance(subscription, str):
            return self.grant_for_subscription(self.retrieve_subscription(subscription), email)
        return Grant(
            source=self.grant_source,
            ref=str(_get(checkout, "id")),
            email=email,
            product=self.product,
            status="paid" if paid else str(_get(checkout, "status") or "open"),
            active=paid,
        )

    def grant_for_subscription(self, subscription: Any, email: str | None = None) -> Grant | None:
        if not set(self.offered) & _price_ids(_get(subscription, "items")):
            return None
        email = email or self._customer_email(_get(subscription, "customer"))
        if email is None:
            return None
        status = str(_get(subscription, "status") or "unknown")
        until = None
        if status == "past_due":
            period_end = _get(subscription, "current_period_end") or _get(
                subscription, "items", "data", 0, "current_period_end"
            )
            start = period_end if isinstance(period_end, int) else int(time.time())
            until = start + self._settings.grace_days * 86400
        return Grant(
            source=self.grant_source,
            ref=str(_get(subscription, "id")),
            email=email,
            product=self.product,
            status=status,
            active=status in GRANTING or status == "past_due",
            valid_until=until,
        )

    def own_customer(self, identity: Identity) -> str | None:
        mine = identity.provider == self.name and identity.subject.startswith("cus_")
        return identity.subject if mine else None

    def customer_of(self, grant_ref: str) -> str | None:
        """The Stripe customer behind one of this provider's grants (a subscription or a paid
        checkout session, as the entitlement store keeps it), or None."""
        if grant_ref.startswith("sub_"):
            found = self.retrieve_subscription(grant_ref)
        elif grant_ref.startswith("cs_") and _OBJECT_ID_RE.fullmatch(grant_ref):
            found = self._call(lambda: self.client.v1.checkout.sessions.retrieve(grant_ref))
        else:
            return None
        return _customer_id(found)

    def retrieve_subscription(self, subscription_id: str) -> Any:
        if not _OBJECT_ID_RE.fullmatch(subscription_id):
            raise BadRequest("Not a subscription id.", code="invalid_event")
        return self._call(
            lambda: self.client.v1.subscriptions.retrieve(
                subscription_id, params={"expand": ["customer"]}
            )
        )

    def _checkout_email(self, checkout: Any) -> str | None:
        for email in (
            _get(checkout, "customer_details", "email"),
            _get(checkout, "customer_email"),
        ):
            if isinstance(email, str) and email_domain(email) is not None:
                return email
        return self._customer_email(_get(checkout, "customer"))

    def _customer_email(self, customer: Any) -> str | None:
        if isinstance(customer, str):
            if not _OBJECT_ID_RE.fullmatch(customer):
                return None
            customer = self._call(lambda: self.client.v1.customers.retrieve(customer))
        email = _get(customer, "email")
        return email if isinstance(email, str) and email_domain(email) is not None else None

    # ------------------------------------------------------------------ webhooks

    def receive_webhook(self, payload: bytes, headers: Headers) -> Response | None:
        """``POST /webhooks/stripe``: None unless signed with this identity's secret."""
        signature = headers.get("Stripe-Signature")
        if not signature or len(payload) > MAX_EVENT_BYTES:
            return None
        event = self.verify_event(payload, signature)
        if event is None:
            return None
        store = self.entitlements
        event_id, kind = str(event["id"]), str(event["type"])
        if not store.first_delivery(event_id):
            return jsonify({"received": True, "duplicate": True})
        try:
            grant = self.handle_event(event)
        except CheckoutUnknown:
            grant = None  # Stripe no longer shows the object: nothing to apply
        except Exception:
            store.forget_delivery(event_id)  # so Stripe's retry is applied, not skipped
            raise
        audit(
            "stripe_event",
            identity=self.name,
            event_id=event_id,
            event_type=kind,
            applied=grant is not None,
        )
        return jsonify({"received": True})

    def handle_event(self, event: Any) -> Grant | None:
        """Apply one verified event by re-reading its object; the grant recorded, if any."""
        kind = _get(event, "type")
        obj = _get(event, "data", "object")
        grant: Grant | None = None
        if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            grant = self.grant_for_checkout(self._retrieve_checkout(str(_get(obj, "id"))))
        elif kind in (
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
        ):
            grant = self.grant_for_subscription(self.retrieve_subscription(str(_get(obj, "id"))))
        elif kind in ("invoice.payment_failed", "invoice.paid", "invoice.payment_succeeded"):
            subscription = _get(obj, "subscription") or _get(
                obj, "parent", "subscription_details", "subscription"
            )
            if isinstance(subscription, str):
                grant = self.grant_for_subscription(self.retrieve_subscription(subscription))
        if grant is not None:
            self.entitlements.record(grant)
        return grant

    def verify_event(self, payload: bytes, signature: str | None) -> Any:
        """The event, when signed with this identity's webhook secret within 300 s; else None."""
        try:
            secret = self._webhook_secret.get_secret_value()
            return self.client.construct_event(payload, signature, secret, 300)
        except (stripe.SignatureVerificationError, ValueError):
            return None

    @staticmethod
    def _call(fn: Any) -> Any:
        try:
            return fn()
        except stripe.InvalidRequestError as exc:
            log.warning("stripe refused a request", extra={"stripe_code": exc.code or ""})
            raise CheckoutUnknown() from None
        except stripe.StripeError as exc:
            log.warning("stripe unavailable", extra={"reason": type(exc).__name__})
            raise PaymentProviderUnavailable() from None


def _customer_id(found: Any) -> str | None:
    """The Stripe customer of a checkout session or subscription (an id, or the expanded
    object), or None."""
    customer = _get(found, "customer")
    customer = customer if isinstance(customer, str) else _get(customer, "id")
    return customer if isinstance(customer, str) and customer.startswith("cus_") else None
