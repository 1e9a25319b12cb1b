"""``POST /webhooks/<kind>``: signed events from a provider's service (Stripe's keep
entitlements current). Each provider that receives webhooks verifies its own; a payload none
of them accepts is a 400.
"""

from __future__ import annotations

import logging

from flask import Blueprint, request
from werkzeug.wrappers import Response

from gateway.errors import BadRequest, NotFound
from gateway.identity.base import ReceivesWebhooks
from gateway.web.current import runtime

bp = Blueprint("webhooks", __name__)
log = logging.getLogger("gateway.webhooks")

KNOWN_KINDS = frozenset({"stripe"})  # answered 400 (not 404) even when none is configured


class InvalidWebhookSignature(BadRequest, code="invalid_signature"):
    """The webhook signature is missing, wrong or too old."""


@bp.post("/webhooks/<kind>")
def webhook(kind: str) -> Response:
    receivers = [
        p
        for p in runtime().providers.values()
        if isinstance(p, ReceivesWebhooks) and p.webhook_kind == kind
    ]
    if not receivers and kind not in KNOWN_KINDS:
        raise NotFound()
    payload = request.get_data(cache=False)
    for receiver in receivers:
        answer = receiver.receive_webhook(payload, request.headers)
        if answer is not None:
            return answer
    log.warning("webhook refused: bad signature", extra={"kind": kind})
    raise InvalidWebhookSignature()
