"""A local stand-in for the few Stripe API endpoints the gateway uses, reached over real HTTP by
the real ``stripe`` library (``api_base``), plus a hosted "checkout page" for browsers and a
signer for webhooks in Stripe's own scheme (``t=<ts>,v1=<hex HMAC-SHA256(secret, "t.payload")>``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

from flask import Flask, abort, jsonify, redirect, request
from werkzeug.wrappers import Response

SECRET_KEY = "sk_test_standin_" + "0" * 24
WEBHOOK_SECRET = "whsec_standin_" + "1" * 24
PRICE = "price_gold_monthly"
OTHER_PRICE = "price_someone_else"


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _form_params(form: Any) -> dict[str, Any]:
    """Stripe's form encoding (``line_items[0][price]=...``) back into nested values."""
    out: dict[str, Any] = {}
    for key, value in form.items(multi=True):
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _expand() -> list[str]:
    return [v for k, v in request.args.items(multi=True) if k.startswith("expand")]


def _missing(what: str) -> Any:
    return jsonify(
        error={
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": f"No such {what}",
        }
    ), 404


class StripeStandin:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.portals: list[dict[str, Any]] = []
        self.down = False
        # Prices as Stripe describes them: amount in minor units, currency, interval.
        self.prices: dict[str, dict[str, Any]] = {
            "price_month": {"unit_amount": 9900, "currency": "dkk", "interval": "month"},
            "price_year": {"unit_amount": 99000, "currency": "dkk", "interval": "year"},
        }
        self.app = self._build()

    # ------------------------------------------------------------------ state changes (tests)

    def pay(self, session_id: str, email: str = "") -> dict[str, Any]:
        """What Stripe does when the visitor pays: customer, subscription, complete session."""
        with self.lock:
            session = self.sessions[session_id]
            email = email or session.get("customer_email") or "payer@example.com"
            customer = {"id": _id("cus"), "object": "customer", "email": email}
            self.customers[customer["id"]] = customer
            session["customer"] = customer["id"]
            session["customer_details"] = {"email": email, "name": "Paying Visitor"}
            session["status"] = "complete"
            session["payment_status"] = "paid"
            if session["mode"] == "subscription":
                sub = self.new_subscription(customer["id"], session["_price"], "active")
                session["subscription"] = sub["id"]
            return session

    def new_subscription(self, customer_id: str, price: str, status: str) -> dict[str, Any]:
        now = int(time.time())
        sub = {
            "id": _id("sub"),
            "object": "subscription",
            "customer": customer_id,
            "status": status,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": _id("si"),
                        "object": "subscription_item",
                        "price": {"id": price, "object": "price"},
                        "current_period_end": now + 30 * 86400,
                    }
                ],
                "has_more": False,
            },
        }
        self.subscriptions[sub["id"]] = sub
        return sub

    def set_status(self, subscription_id: str, status: str, period_end: int | None = None) -> None:
        with self.lock:
            sub = self.subscriptions[subscription_id]
            sub["status"] = status
            if period_end is not None:
                sub["items"]["data"][0]["current_period_end"] = period_end

    def event(self, kind: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
        body = {
            "id": event_id or _id("evt"),
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
        return json.dumps(body).encode()

    @staticmethod
    def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
        stamp = int(time.time()) if timestamp is None else timestamp
        signed = f"{stamp}.".encode() + payload
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return f"t={stamp},v1={digest}"

    # ------------------------------------------------------------------ the API

    def _expanded(self, session: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        out = {k: v for k, v in session.items() if not k.startswith("_")}
        if "line_items" in expand:
            out["line_items"] = {
                "object": "list",
                "data": [
                    {
                        "id": _id("li"),
                        "object": "item",
                        "price": {"id": session["_price"], "object": "price"},
                        "quantity": 1,
                    }
                ],
                "has_more": False,
                "url": f"/v1/checkout/sessions/{session['id']}/line_items",
            }
        if "subscription" in expand and session.get("subscription"):
            out["subscription"] = self.subscriptions[session["subscription"]]
        if "customer" in expand and session.get("customer"):
            out["customer"] = self.customers[session["customer"]]
        return out

    def _build(self) -> Flask:
        app = Flask("stripe-standin")
        app.before_request(self._authenticate)
        for method, rule, view in (
            ("POST", "/v1/checkout/sessions", self._create_session),
            ("POST", "/v1/billing_portal/sessions", self._create_portal),
            ("GET", "/v1/prices/<price_id>", self._get_price),
            ("GET", "/v1/checkout/sessions/<session_id>", self._get_session),
            ("GET", "/v1/subscriptions/<sub_id>", self._get_subscription),
            ("GET", "/v1/customers/<customer_id>", self._get_customer),
            ("GET", "/pay/<session_id>", self._pay_page),
            ("GET", "/portal/<portal_id>", self._portal_page),
            ("POST", "/pay/<session_id>", self._pay_submit),
        ):
            app.add_url_rule(rule, view.__name__, view, methods=[method])
        return app

    def _authenticate(self) -> Any:
        if request.path.startswith("/v1/"):
            self.calls.append(f"{request.method} {request.path}")
            if self.down:
                return jsonify(error={"type": "api_error", "message": "down"}), 500
            if request.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
                return jsonify(error={"type": "invalid_request_error", "message": "bad key"}), 401
        return None

    def _create_session(self) -> Any:
        params = _form_params(request.form)
        price = params["line_items"]["0"]["price"]
        session = {
            "id": _id("cs_test"),
            "object": "checkout.session",
            "mode": params["mode"],
            "status": "open",
            "payment_status": "unpaid",
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "customer": None,
            "customer_details": None,
            "subscription": None,
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "_price": price,
            "_trial_days": (params.get("subscription_data") or {}).get("trial_period_days"),
            "_promotion_codes": params.get("allow_promotion_codes"),
        }
        session["url"] = f"{request.host_url}pay/{session['id']}"
        with self.lock:
            self.sessions[session["id"]] = session
        return jsonify(self._expanded(session, []))

    def _create_portal(self) -> Any:
        params = _form_params(request.form)
        if params.get("customer") not in self.customers:
            return _missing("customer")
        portal = {
            "id": _id("bps"),
            "object": "billing_portal.session",
            "customer": params["customer"],
            "return_url": params.get("return_url"),
        }
        portal["url"] = f"{request.host_url}portal/{portal['id']}"
        with self.lock:
            self.portals.append(portal)
        return jsonify(portal)

    def _get_price(self, price_id: str) -> Any:
        known = self.prices.get(price_id)
        if known is None:
            return _missing("price")
        recurring = {"interval": known["interval"]} if known.get("interval") else None
        return jsonify(
            {
                "id": price_id,
                "object": "price",
                "unit_amount": known["unit_amount"],
                "currency": known["currency"],
                "recurring": recurring,
            }
        )

    def _get_session(self, session_id: str) -> Any:
        session = self.sessions.get(session_id)
        if session is None:
            return _missing("checkout.session")
        return jsonify(self._expanded(session, _expand()))

    def _get_subscription(self, sub_id: str) -> Any:
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            return _missing("subscription")
        out = dict(sub)
        if "customer" in _expand():
            out["customer"] = self.customers[sub["customer"]]
        return jsonify(out)

    def _get_customer(self, customer_id: str) -> Any:
        customer = self.customers.get(customer_id)
        return jsonify(customer) if customer else _missing("customer")

    # The hosted checkout page a browser sees.
    def _pay_page(self, session_id: str) -> Any:
        session = self.sessions.get(session_id) or abort(404)
        email = session.get("customer_email") or ""
        return Response(
            "<!doctype html><title>Stand-in checkout</title><h1>Pay for your subscription</h1>"
            f'<form method="post"><input name="email" id="email" value="{email}">'
            '<button id="pay" type="submit">Pay</button></form>'
            f'<a id="cancel" href="{session["cancel_url"]}">Cancel</a>',
            mimetype="text/html",
        )

    def _portal_page(self, portal_id: str) -> Any:
        portal = next((p for p in self.portals if p["id"] == portal_id), None) or abort(404)
        return Response(
            "<!doctype html><title>Stand-in customer portal</title>"
            f"<h1>Manage the subscription of {portal['customer']}</h1>"
            f'<a id="return" href="{portal["return_url"]}">Return</a>',
            mimetype="text/html",
        )

    def _pay_submit(self, session_id: str) -> Any:
        if session_id not in self.sessions:
            abort(404)
        session = self.pay(session_id, request.form.get("email", ""))
        return redirect(
            session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id), code=303
        )
