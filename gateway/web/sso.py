"""Site access: ``/sso/<site>/login`` -> identity provider -> policy -> 23 session -> redeem URL."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from werkzeug.wrappers import Response

from gateway import metrics
from gateway.errors import BadRequest, Forbidden, NotFound, UpstreamError
from gateway.identity.base import Identity, PendingLogin, Provider
from gateway.identity.oidc import OidcProvider
from gateway.logs import audit
from gateway.policy import decide
from gateway.redirects import safe_next, safe_return_url
from gateway.settings import SiteSettings
from gateway.twentythree.signin import NoAccount, session_redirect, user_login_redirect
from gateway.web.context import services, site_or_404
from gateway.web.pages import message_page
from gateway.web.visitor import (
    SignInNotConfigured,
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
    chosen = source.get("provider", "")
    visitor = current_visitor()
    if visitor is not None and request.method == "GET" and not chosen:
        return _finish(site, visitor.identity, pending)  # known visitor: no IdP round trip

    providers = _site_providers(site)
    if not providers:
        raise SignInNotConfigured()
    if chosen:
        provider = next((p for p in providers if p.name == chosen), None)
        if provider is None:
            raise BadRequest("Unknown sign-in choice.", code="invalid_provider")
    elif len(providers) == 1:
        provider = providers[0]
    else:
        page = render_template(
            "chooser.html",
            site=site.name,
            return_url=return_url,
            next=pending.next,
            choices=providers,
        )
        return Response(page, mimetype="text/html")

    outcome = provider.begin(request, pending)
    if isinstance(outcome, Identity):
        return _finish(site, outcome, pending)
    return outcome


@bp.get("/sso/oidc/<identity_name>/callback")
def oidc_callback(identity_name: str) -> Response:
    provider = services().providers.get(identity_name)
    if not isinstance(provider, OidcProvider):
        raise NotFound()
    identity, pending = provider.complete(request)
    site = site_or_404(pending.site)
    if identity_name not in site.identities:
        raise BadRequest("This sign-in does not belong to this site.", code="invalid_state")
    checked = PendingLogin(
        site.name, safe_return_url(pending.return_url, site), safe_next(pending.next, site)
    )
    return _finish(site, identity, checked)


def _finish(site: SiteSettings, identity: Identity, pending: PendingLogin) -> Response:
    """Policy, then 23: the only way from an identity to a redeem URL. A login that started at
    one of the gateway's own video links goes back there instead, with no 23 session."""
    decision = decide(site, identity)
    if not decision.allowed:
        _record(site, identity, "denied", decision.code)
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
