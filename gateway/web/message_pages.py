"""Browser-facing pages: an HTML rendering of the same errors the JSON API gives."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, render_template, request
from werkzeug.wrappers import Response

from gateway.i18n import gettext as _
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
    "forbidden_by_rule": "This video is not open to your account",
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
    "not_found": "Nothing here",
    "signed_out_elsewhere": "You were signed out here",
    "method_not_allowed": "Not possible here",
    "upload_not_allowed": "You cannot upload here",
    "upload_unknown": "Upload not recognised",
    "upload_unconfirmed": "Upload not recognised",
    "upload_failed": "The upload did not go through",
    "uploads_not_enabled": "Uploads are not open here",
}


# What a visitor's page says for a refusal; the developer's sentence stays in the JSON form.
VISITOR_MESSAGES = {
    "upload_not_allowed": "Your account may not upload videos to this site. Ask the site's "
    "owner for access.",
    "upload_unknown": "This upload was not started here by you, or it was already finished. "
    "Nothing was added.",
    "upload_unconfirmed": "This upload was not started here by you, or it was already "
    "finished. Nothing was added.",
    "uploads_not_enabled": "This video site takes no uploads through this service.",
    "signed_out_elsewhere": "Your account signed in on another device, and this site allows "
    "only so many at once, so the oldest was signed out. Sign in again to watch here (the "
    "oldest of your other devices is then signed out).",
    "not_found": "There is nothing at this address. Check the link, or go back to the video "
    "site you came from.",
    "method_not_allowed": "This address cannot be used that way.",
    "domain_not_allowed": "This video site is open to certain organisations only, and your "
    "account is not one of them. Sign in with another account, or ask the site's owner for "
    "access.",
    "group_not_allowed": "Your account is not in a group that may watch these videos. Ask the "
    "site's owner for access.",
    "untrusted_provider": "This video site does not accept that kind of sign-in. Sign in with "
    "the account the site asks for.",
    "email_unverified": "Verify your e-mail address with your account provider, then try again.",
    "invalid_email": "Your account has no e-mail address the video site can use.",
    "no_account": "You have no account on this video site yet. Ask the site's owner to add you.",
    "upstream_unavailable": "The video site is not answering right now. Please try again in a "
    "minute.",
    "upstream_bad_response": "The video site is not answering properly right now. Please try "
    "again in a minute.",
    "upstream_timeout": "The video site is taking too long to answer. Please try again in a "
    "minute.",
    "upstream_rejected": "The video site refused to sign you in. Its owner has been told why "
    "in the gateway's log.",
    "admin_refused": "This account may not open the operator console.",
    "forbidden_by_rule": "This video is only for some of the site's viewers (a channel or tag "
    "with its own rules), and your account is not among them. Ask the site's owner for access.",
}


@dataclass(frozen=True)
class Brand:
    """How a page names and dresses the site it is about."""

    name: str
    title: str
    logo_url: str = ""
    accent: str = ""


def brand_of(site_name: str | None) -> Brand | None:
    """The page's site, as the config describes it (None on pages about no site)."""
    if not site_name:
        return None
    if site_name == "_admin":
        return Brand(site_name, str(_("Operator console")))
    # The wiring is looked up, not imported: pages sit below it (no import cycle).
    settings = current_app.extensions["gateway.runtime"].settings
    site = settings.sites.get(site_name)
    if site is None:
        return None
    return Brand(site.name, site.title, site.logo_url, site.accent_color)


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
    site: str | None = None,
    detail: str = "",
) -> Response:
    """An HTML page for a result or refusal, in the visitor's language. Known codes get the
    visitor's wording; ``detail`` (which site, which call, what failed) is for whoever they
    ask for help."""
    page = render_template(
        "message.html",
        badge=_(BADGES.get(status, "Video sign-in")),
        title=_(title or TITLES.get(code, "Something went wrong")),
        message=_(VISITOR_MESSAGES.get(code, message)),
        code=code,
        detail=detail,
        retry_url=retry_url,
        retry_label=_(retry_label) if retry_label else None,
        request_id=request_id_var.get(),
        site=site,
    )
    return Response(page, status=status, mimetype="text/html")
