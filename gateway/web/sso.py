"""Site access: ``/sso/<site>/login`` -> identity provider -> policy -> 23 session -> redeem URL,
the providers' own steps (``/sso/<kind>/<identity>/<step>``) and logout.

Providers are reached through their capabilities (``gateway.identity.base``), never by class.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Blueprint, redirect, render_template, request, url_for
from itsdangerous import BadSignature
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.wrappers import Response

from gateway import metrics
from gateway.errors import BadRequest, Forbidden, GatewayError, NotFound, UpstreamError
from gateway.identity.base import (
    BeforeChooser,
    Completed,
    EndsIdpSession,
    HasRoutes,
    IdentifiesEachRequest,
    Identity,
    Page,
    PendingLogin,
    Provider,
    on_chooser,
)
from gateway.logs import audit
from gateway.redirects import on_site, safe_next, safe_return_url
from gateway.settings import SiteSettings
from gateway.signing import timed_serializer
from gateway.twentythree.signin import NoAccount, session_redirect, user_login_redirect
from gateway.web.current import limit_pending_sign_ins, runtime, site_or_404
from gateway.web.message_pages import message_page, wants_html
from gateway.web.scopes import SignInScope, scope_named
from gateway.web.shown import guard, render_page, show
from gateway.web.visitor import (
    SignInNotConfigured,
    access_decision,
    current_session,
    end_session,
    start_session,
    visitor_for,
)

bp = Blueprint("sso", __name__)

SIGNED_OUT_STATE_AGE = 3600  # seconds the IdP may take to send the visitor back after logout
PAYWALL_CODES = frozenset({"entitlement_required", "subscription_lapsed"})


@bp.route("/sso/<site_name>/login", methods=["GET", "POST"])
def login(site_name: str) -> Response:
    scoped = scope_named(site_name)  # the operator console's sign-in, same providers
    if scoped is not None:
        return _scoped_login(site_name, scoped)
    site = site_or_404(site_name)
    source = request.form if request.method == "POST" else request.args
    return_url = safe_return_url(source.get("return_url"), site)  # 400 before anything else
    pending = PendingLogin(site.name, return_url, safe_next(source.get("next"), site))
    providers = runtime().site(site.name).providers
    early = next(
        (p for p in providers if isinstance(p, BeforeChooser) and p.before_chooser(request)), None
    )
    if early is not None:
        return _before_chooser(site, early, pending)
    chosen = source.get("provider", "")
    if request.method == "GET" and not chosen:
        visitor = visitor_for(site)  # this site's own session, or a trusted proxy's headers
        if visitor is not None:
            return _finish(site, visitor, pending)  # no IdP round trip

    provider = _chosen(providers, chosen)
    if provider is None:
        return _chooser(site, pending, _offered(providers))
    limit_pending_sign_ins(site.name)
    outcome = provider.begin(request, pending)
    if isinstance(outcome, Identity):
        return _finish(site, outcome, pending)
    return show(outcome)


def _chosen(providers: Sequence[Provider], chosen: str) -> Provider | None:
    """The provider the visitor chose, or the only one on offer; None: let them choose."""
    if not providers:
        raise SignInNotConfigured()
    if chosen:
        provider = next((p for p in providers if p.name == chosen), None)
        if provider is None:
            raise BadRequest("Unknown sign-in choice.", code="invalid_provider")
        return provider
    choices = _offered(providers)
    return choices[0] if len(choices) == 1 else None


def _offered(providers: Sequence[Provider]) -> list[Provider]:
    return [p for p in providers if on_chooser(p)] or list(providers)


def _scoped_login(name: str, scope: SignInScope) -> Response:
    """A sign-in that ends somewhere other than a site (the console): its one provider,
    always through the IdP (a visitor session's groups are a snapshot), or a trusted proxy."""
    provider = runtime().providers[scope.identity()]
    if isinstance(provider, IdentifiesEachRequest):
        proxied = provider.identify(request)
        if proxied is not None:
            return scope.complete(provider.name, proxied)
    limit_pending_sign_ins(name)
    outcome = provider.begin(request, PendingLogin(name, scope.landing, ""))
    if isinstance(outcome, Identity):
        return scope.complete(provider.name, outcome)
    return show(outcome)


def _chooser(site: SiteSettings, pending: PendingLogin, choices: list[Provider]) -> Response:
    page = render_template(
        "chooser.html",
        site=site.name,
        return_url=pending.return_url,
        next=pending.next,
        choices=choices,
    )
    return Response(page, mimetype="text/html")


def _before_chooser(site: SiteSettings, provider: BeforeChooser, pending: PendingLogin) -> Response:
    """Something a provider takes before anything else (a paywall's token). It never silently
    replaces another signed-in visitor, and it signs in directly only on a top-level
    navigation; otherwise the visitor confirms on a page of ours first (login CSRF)."""
    name = provider.name
    if request.method == "POST":
        guard(f"continue:{name}").check(request)
    else:
        vouched = provider.peek(request)
        current = current_session()
        switching = current is not None and current.identity.email.lower() != vouched.email.lower()
        navigated = request.headers.get("Sec-Fetch-Dest", "document") == "document" and (
            request.headers.get("Sec-Fetch-Mode", "navigate") == "navigate"
        )
        if switching or not navigated:
            page = Page.sign_in_form(
                "continue_as.html",
                name,
                pending,
                form=f"continue:{name}",
                email=vouched.email,
                current=current.identity.email if switching and current else "",
                token=request.values.get("jwt", ""),
                back=on_site(site, pending.return_url),
            )
            return render_page(page)
    limit_pending_sign_ins(site.name)
    outcome = provider.begin(request, pending)
    if isinstance(outcome, Identity):
        return _finish(site, outcome, pending)
    return show(outcome)


@bp.route("/sso/<kind>/<identity_name>/<step>", methods=["GET", "POST"])
def provider_step(kind: str, identity_name: str, step: str) -> Response:
    """A provider's own step (an OIDC callback, a Stripe return, an e-mail link...)."""
    provider = runtime().providers.get(identity_name)
    if not isinstance(provider, HasRoutes) or provider.kind != kind:
        raise NotFound()
    route = provider.routes().get(step)
    if route is None:
        raise NotFound()
    if request.method not in route.methods:
        raise MethodNotAllowed(valid_methods=list(route.methods))
    try:
        result = route.handler(request)
    except GatewayError as exc:
        if exc.status >= 400:
            audit("sso_failed", provider=identity_name, step=step, detail=exc.code)
        raise
    if isinstance(result, Completed):
        return _returned(identity_name, result)
    return show(result)


def _returned(identity_name: str, done: Completed) -> Response:
    """A visitor back from a provider they left (OIDC, Stripe, an e-mail link)."""
    scoped = scope_named(done.pending.site)
    if scoped is not None:
        return scoped.complete(identity_name, done.identity)
    site = site_or_404(done.pending.site)
    if identity_name not in site.identities:
        raise BadRequest("This sign-in does not belong to this site.", code="invalid_state")
    checked = PendingLogin(
        site.name,
        safe_return_url(done.pending.return_url, site),
        safe_next(done.pending.next, site),
    )
    return _finish(site, done.identity, checked)


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
                403,
                decision.code,
                decision.message,
                retry_url=subscribe,
                retry_label=label,
                site=site.name,
            )
        raise Forbidden(decision.message, code=decision.code)  # a page for browsers, else JSON
    if pending.next:
        _record(site, identity, "granted", "gateway_link")
        response = redirect(pending.next, code=302)
        start_session(response, identity, site.name)
        return response
    if site.login_mode == "user" and not identity.email_proven:
        # Signing in as the 23 user with this address needs proof that it is theirs.
        _record(site, identity, "denied", "email_unproven")
        raise Forbidden(
            "This site signs you in as your own video-site user, which needs a sign-in that "
            "proves your e-mail address.",
            code="email_unproven",
        )
    client = runtime().site(site.name).client
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
    start_session(response, identity, site.name)
    return response


def _subscribe_url(site: SiteSettings, pending: PendingLogin) -> str | None:
    """Where a visitor without the site's entitlement can get it, when the site sells it."""
    for provider in runtime().site(site.name).providers:
        if getattr(provider, "sells_entitlements", False):
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
        groups=list(identity.groups),
        outcome=outcome,
        detail=detail,
        **({"subject": identity.subject} if identity.subject.startswith("network:") else {}),
    )


# ---------------------------------------------------------------------- logout


@bp.route("/sso/<site_name>/logout", methods=["GET", "POST"])
def logout(site_name: str) -> Response:
    """The site's remote logout URL. GET asks (a page with a button); POST ends the gateway
    session for every worker and instance, then the IdP's session where it offers that."""
    site = site_or_404(site_name)
    source = request.form if request.method == "POST" else request.args
    given = source.get("return_url")
    return_url = safe_return_url(given, site) if given else ""  # validated like login's
    session = current_session()
    if request.method == "GET":
        if session is None:
            return _signed_out_page(site, return_url)
        context = {
            "site": site.name,
            "email": session.identity.email,
            "return_url": return_url,
            "back": on_site(site, return_url or "/"),
        }
        return render_page(Page("logout.html", context, form="logout"))
    response: Response | None = None
    if session is not None:
        guard("logout").check(request)
        runtime().sessions.revoke(session)
        identity = session.identity
        audit("sso_signed_out", site=site.name, email=identity.email, provider=identity.provider)
        provider = runtime().providers.get(identity.provider)
        if isinstance(provider, EndsIdpSession):
            signer = timed_serializer(runtime().settings.gateway.secret_keys, "signed-out")
            state = signer.dumps({"s": site.name, "r": return_url})
            done = runtime().settings.gateway.public_url + "/sso/signed-out"
            url = provider.end_session_url(identity, done, state)
            if url:
                response = redirect(url, code=303)
    if response is None:
        response = redirect(on_site(site, return_url), 303) if return_url else None
    if response is None:
        response = _signed_out_page(site, "")
    end_session(response)
    return response


@bp.get("/sso/signed-out")
def signed_out() -> Response:
    """Where the IdP sends the visitor after its own logout (the post-logout redirect URI)."""
    signer = timed_serializer(runtime().settings.gateway.secret_keys, "signed-out")
    try:
        data = signer.loads(request.args.get("state", ""), max_age=SIGNED_OUT_STATE_AGE)
    except (BadSignature, ValueError):
        data = None
    site = runtime().settings.sites.get(data.get("s", "")) if isinstance(data, dict) else None
    if site is None or not isinstance(data, dict):
        return _signed_out_page(None, "")
    try:
        return_url = safe_return_url(str(data.get("r") or ""), site)
    except BadRequest:
        return_url = ""
    if return_url and data.get("r"):
        return redirect(on_site(site, return_url), 303)
    return _signed_out_page(site, "")


def _signed_out_page(site: SiteSettings | None, return_url: str) -> Response:
    return message_page(
        200,
        "",
        "You have been signed out of the video sign-in service.",
        title="You are signed out",
        retry_url=on_site(site, return_url or "/") if site is not None else None,
        retry_label="Back to the videos" if site is not None else None,
        site=site.name if site is not None else None,
    )
