"""Site access: ``/sso/<site>/login`` -> identity provider -> policy -> 23 session -> redeem URL."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from gateway import metrics
from gateway.errors import BadRequest, Forbidden, NotFound, UpstreamError
from gateway.identity.base import CallbackProvider, Identity, PendingLogin, Provider
from gateway.identity.email_link import EmailLinkProvider
from gateway.identity.oidc import OidcProvider
from gateway.identity.paywall_jwt import PaywallJwtProvider
from gateway.identity.stripe_checkout import StripeCheckoutProvider
from gateway.logs import audit
from gateway.redirects import safe_next, safe_return_url
from gateway.settings import SiteSettings
from gateway.twentythree.signin import NoAccount, session_redirect, user_login_redirect
from gateway.web.context import services, site_or_404
from gateway.web.pages import message_page, wants_html
from gateway.web.visitor import (
    SignInNotConfigured,
    access_decision,
    current_visitor,
    end_session,
    start_session,
)

bp = Blueprint("sso", __name__)


def _site_providers(site: SiteSettings) -> list[Provider]:
    providers = services().providers
    return [providers[name] for name in site.identities if name in providers]


@bp.route("/sso/<site_name>/login", methods=["GET", "POST"])
def login(site_name: str) -> Response:
    site = site_or_404(site_name)
    source = request.form if request.method == "POST" else request.args
    return_url = safe_return_url(source.get("return_url"), site)  # 400 before anything else
    pending = PendingLogin(site.name, return_url, safe_next(source.get("next"), site))
    providers = _site_providers(site)
    chosen = source.get("provider", "")
    # A paywall's token is honoured first, whoever the visitor was: it may carry new rights.
    paywall = next((p for p in providers if isinstance(p, PaywallJwtProvider)), None)
    if paywall is not None and source.get("jwt"):
        return _finish(site, paywall.identity_from(source["jwt"]), pending)
    visitor = current_visitor()
    if visitor is not None and request.method == "GET" and not chosen:
        return _finish(site, visitor.identity, pending)  # known visitor: no IdP round trip

    if not providers:
        raise SignInNotConfigured()
    # A paywall token comes from the paywall, not from a button here.
    choices = [p for p in providers if not isinstance(p, PaywallJwtProvider)] or providers
    if chosen:
        provider = next((p for p in providers if p.name == chosen), None)
        if provider is None:
            raise BadRequest("Unknown sign-in choice.", code="invalid_provider")
    elif len(choices) == 1:
        provider = choices[0]
    else:
        page = render_template(
            "chooser.html",
            site=site.name,
            return_url=return_url,
            next=pending.next,
            choices=choices,
        )
        return Response(page, mimetype="text/html")

    outcome = provider.begin(request, pending)
    if isinstance(outcome, Identity):
        return _finish(site, outcome, pending)
    return outcome


def _returned(identity_name: str, kind: type[CallbackProvider]) -> Response:
    """A visitor back from a provider they left (OIDC, Stripe, an e-mail link)."""
    provider = services().providers.get(identity_name)
    if not isinstance(provider, kind):
        raise NotFound()
    identity, pending = provider.complete(request)
    site = site_or_404(pending.site)
    if identity_name not in site.identities:
        raise BadRequest("This sign-in does not belong to this site.", code="invalid_state")
    checked = PendingLogin(
        site.name, safe_return_url(pending.return_url, site), safe_next(pending.next, site)
    )
    return _finish(site, identity, checked)


@bp.get("/sso/oidc/<identity_name>/callback")
def oidc_callback(identity_name: str) -> Response:
    return _returned(identity_name, OidcProvider)


@bp.get("/sso/stripe/<identity_name>/return")
def stripe_return(identity_name: str) -> Response:
    return _returned(identity_name, StripeCheckoutProvider)


@bp.get("/sso/stripe/<identity_name>/cancel")
def stripe_cancel(identity_name: str) -> Response:
    provider = services().providers.get(identity_name)
    if not isinstance(provider, StripeCheckoutProvider):
        raise NotFound()
    pending = provider.pending_for(request.args.get("ref", "")[:64])
    retry = None
    if pending is not None and pending.site in services().settings.sites:
        retry = _login_url(pending)
    return message_page(
        200,
        "checkout_cancelled",
        "You left the payment page before paying. Nothing was charged.",
        title="Payment cancelled",
        retry_url=retry,
    )


@bp.route("/sso/email/<identity_name>/verify", methods=["GET", "POST"])
def email_verify(identity_name: str) -> Response:
    provider = services().providers.get(identity_name)
    if not isinstance(provider, EmailLinkProvider):
        raise NotFound()
    if request.method == "GET":
        return provider.confirm_page(request)
    return _returned(identity_name, EmailLinkProvider)


def _finish(site: SiteSettings, identity: Identity, pending: PendingLogin) -> Response:
    """Policy, then 23: the only way from an identity to a redeem URL. A login that started at
    one of the gateway's own video links goes back there instead, with no 23 session."""
    decision = access_decision(site, identity)
    if not decision.allowed:
        _record(site, identity, "denied", decision.code)
        subscribe = _subscribe_url(site, pending)
        if subscribe and decision.code in PAYWALL_CODES and wants_html():
            label = "Renew" if decision.code == "subscription_lapsed" else "Subscribe"
            return message_page(
                403, decision.code, decision.message, retry_url=subscribe, retry_label=label
            )
        raise Forbidden(decision.message, code=decision.code)  # a page for browsers, else JSON
    if pending.next:
        _record(site, identity, "granted", "gateway_link")
        response = redirect(pending.next, code=302)
        start_session(response, identity)
        return response
    client = services().clients[site.name]
    try:
        if site.login_mode == "user":
            url = user_login_redirect(client, identity.email, pending.return_url)
        else:
            url = session_redirect(client, identity.email, identity.name, pending.return_url)
    except NoAccount:
        _record(site, identity, "denied", NoAccount.code)
        raise
    except UpstreamError as exc:
        _record(site, identity, "failed", exc.code)
        raise
    _record(site, identity, "granted", site.login_mode)
    response = redirect(url, code=302)
    start_session(response, identity)
    return response


PAYWALL_CODES = frozenset({"entitlement_required", "subscription_lapsed"})


def _subscribe_url(site: SiteSettings, pending: PendingLogin) -> str | None:
    """Where a visitor without the site's entitlement can get it, when the site sells it."""
    for provider in _site_providers(site):
        if isinstance(provider, StripeCheckoutProvider):
            return _login_url(pending, provider.name)
    return None


def _login_url(pending: PendingLogin, provider: str | None = None) -> str:
    """The site's sign-in again, for the same return URL and gateway link."""
    return url_for(
        "sso.login",
        site_name=pending.site,
        return_url=pending.return_url,
        next=pending.next or None,
        provider=provider,
    )


def _record(site: SiteSettings, identity: Identity, outcome: str, detail: str) -> None:
    metrics.SESSIONS_GRANTED.labels(site.name, identity.provider, outcome).inc()
    audit(
        f"sso_{outcome}",
        site=site.name,
        email=identity.email,
        provider=identity.provider,
        outcome=outcome,
        detail=detail,
    )


@bp.get("/sso/<site_name>/logout")
def logout(site_name: str) -> Response:
    site = site_or_404(site_name)
    visitor = current_visitor()
    response: Response | None = None
    if visitor is not None:
        audit(
            "sso_signed_out",
            site=site.name,
            email=visitor.identity.email,
            provider=visitor.identity.provider,
        )
        provider = services().providers.get(visitor.identity.provider)
        if isinstance(provider, OidcProvider):
            done = services().settings.gateway.public_url + "/sso/signed-out"
            url = provider.end_session_url(done)
            if url:
                response = redirect(url, code=302)
    if response is None:
        response = _signed_out_page()
    end_session(response)
    return response


@bp.get("/sso/signed-out")
def signed_out() -> Response:
    return _signed_out_page()


def _signed_out_page() -> Response:
    return message_page(
        200,
        "",
        "You have been signed out of the video sign-in service.",
        title="You are signed out",
    )
