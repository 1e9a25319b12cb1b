"""``POST /webhooks/stripe``: Stripe's signed events keep entitlements current.

The signature (Stripe's scheme, checked by the ``stripe`` library, 300 s tolerance) must match
the webhook secret of one configured ``stripe`` identity; anything else is 400. Each event id
is applied once; the event's object is re-read from Stripe, so a late, early or repeated event
can only ever write what Stripe says now. If Stripe cannot be reached the event is forgotten
and answered 502, and Stripe's retry applies it later.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from gateway.errors import BadRequest
from gateway.identity.stripe_checkout import CheckoutUnknown, StripeCheckoutProvider
from gateway.logs import audit
from gateway.web.context import services

bp = Blueprint("webhooks", __name__)
log = logging.getLogger("gateway.webhooks")

MAX_EVENT_BYTES = 512 * 1024  # Stripe's events are far smaller


class InvalidWebhookSignature(BadRequest):
    code = "invalid_signature"
    default_message = "The webhook signature is missing, wrong or too old."


@bp.post("/webhooks/stripe")
def stripe_webhook() -> Response:
    svc = services()
    payload = request.get_data(cache=False)
    signature = request.headers.get("Stripe-Signature")
    if not signature or len(payload) > MAX_EVENT_BYTES:
        raise InvalidWebhookSignature()
    for provider in svc.providers.values():
        if not isinstance(provider, StripeCheckoutProvider):
            continue
        event = provider.verify_event(payload, signature)
        if event is not None:
            return _apply(provider, event)
    log.warning("stripe webhook refused: bad signature")
    raise InvalidWebhookSignature()


def _apply(provider: StripeCheckoutProvider, event: Any) -> Response:
    store = provider.entitlements
    event_id, kind = str(event["id"]), str(event["type"])
    if not store.first_delivery(event_id):
        return jsonify({"received": True, "duplicate": True})
    try:
        grant = provider.handle_event(event)
    except CheckoutUnknown:
        grant = None  # Stripe no longer shows the object: nothing to apply
    except Exception:
        store.forget_delivery(event_id)  # so Stripe's retry is applied, not skipped
        raise
    audit(
        "stripe_event",
        identity=provider.name,
        event_id=event_id,
        event_type=kind,
        applied=grant is not None,
    )
    return jsonify({"received": True})
