"""Browser-facing pages: an HTML rendering of the same errors the JSON API gives."""

from __future__ import annotations

from flask import render_template, request
from werkzeug.wrappers import Response

from gateway.logs import request_id_var

BADGES = {
    400: "Sign-in problem",
    401: "Sign-in problem",
    403: "Access denied",
    404: "Not found",
    429: "Slow down",
    502: "Video site unavailable",
    503: "Unavailable",
    504: "Video site unavailable",
}
TITLES = {
    "domain_not_allowed": "This account cannot enter",
    "group_not_allowed": "This account cannot enter",
    "email_unverified": "Please verify your e-mail address",
    "no_account": "No account on this video site",
    "entitlement_required": "Subscription needed",
    "subscription_lapsed": "Your subscription has lapsed",
    "payment_received": "Payment received",
    "checkout_not_paid": "Payment not completed",
    "payment_provider_unavailable": "The payment service is unavailable",
    "invalid_paywall_token": "That link cannot be used",
    "paywall_token_replayed": "That link was already used",
    "paywall_token_required": "Start at the paywall",
    "invalid_sign_in_link": "That sign-in link cannot be used",
    "sign_in_link_used": "That sign-in link was already used",
    "mail_unavailable": "The e-mail could not be sent",
    "upstream_unavailable": "The video site is unavailable",
    "upstream_bad_response": "The video site is unavailable",
    "upstream_rejected": "The video site refused the sign-in",
    "upstream_timeout": "The video site is not answering",
    "sign_in_cancelled": "Sign-in cancelled",
    "invalid_return_url": "That link cannot be used",
    "identity_provider_unavailable": "The sign-in service is unavailable",
}


def wants_html() -> bool:
    """Browsers get pages; API clients (``*/*``, JSON) get JSON."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def message_page(
    status: int,
    code: str,
    message: str,
    *,
    title: str | None = None,
    retry_url: str | None = None,
    retry_label: str | None = None,
) -> Response:
    page = render_template(
        "message.html",
        badge=BADGES.get(status, "Video sign-in"),
        title=title or TITLES.get(code, "Something went wrong"),
        message=message,
        code=code,
        retry_url=retry_url,
        retry_label=retry_label,
        request_id=request_id_var.get(),
    )
    return Response(page, status=status, mimetype="text/html")
