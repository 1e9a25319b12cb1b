"""The console's pages: /admin (overview with plots), /admin/audit, /admin/why, /admin/config,
/admin/sessions (one person's sessions; sign them out everywhere) and /admin/lockouts (lift
one).

Every page needs a console session (``access``); every POST (sign out, sign someone out
everywhere, lift a lockout) carries the console's CSRF token and is an audit line naming the
operator. Pages are HTML with no script, under the same strict CSP as every other page.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from gateway.admin import access
from gateway.admin.diagnose import as_toml, diagnose, masked
from gateway.admin.figures import site_figures
from gateway.errors import BadRequest, NotFound
from gateway.i18n import plain
from gateway.identity.password_form import current_lockouts, lift_lockout
from gateway.logs import audit
from gateway.sessions import SignedSession
from gateway.telemetry import ALL
from gateway.twentythree.coerce import photo_id
from gateway.web.current import runtime
from gateway.web.message_pages import message_page
from gateway.web.scopes import SignInScope, register

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.record_once(
    lambda state: register(
        state.app, access.SCOPE, SignInScope(access.identity_name, access.LANDING, access.complete)
    )
)

AUDIT_ROWS = 200
FILTERS = ("site", "email", "event", "outcome")


@bp.before_request
def only_operators() -> Response | None:
    access.settings()  # 404 when there is no console
    if request.endpoint in ("admin.login", "admin.signed_out"):
        return None
    operator = access.current_operator()
    if operator is None:
        return redirect(url_for("admin.login"), code=303)
    request.environ["gateway.operator"] = operator
    return None


def _page(template: str, **context: Any) -> Response:
    operator: SignedSession = request.environ["gateway.operator"]
    page = render_template(
        template,
        operator=operator,
        csrf=access.csrf_token(operator),
        active=request.endpoint,
        **context,
    )
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/login")
def login() -> Response:
    return redirect(url_for("sso.login", site_name=access.SCOPE), code=303)


@bp.post("/logout")
def logout() -> Response:
    operator: SignedSession = request.environ["gateway.operator"]
    access.check_csrf(operator)
    response = redirect(url_for("admin.signed_out"), code=303)
    access.sign_out(operator, response)
    return response


@bp.get("/signed-out")
def signed_out() -> Response:
    """Where the console's sign-out lands: said plainly, with the way back in."""
    return message_page(
        200,
        "",
        "You are signed out of the operator console.",
        title="You are signed out",
        retry_url=url_for("admin.overview"),
        retry_label="Sign in again",
    )


@bp.get("")
def overview() -> Response:
    svc = runtime()
    names = list(svc.settings.sites)
    figures = [site_figures(svc.telemetry, ALL, "all")] if len(names) > 1 else []
    figures += [site_figures(svc.telemetry, name, f"site-{i}") for i, name in enumerate(names)]
    ready = {s.site: s for s in svc.readiness.known()}
    catalogues = [c.health() for c in svc.catalogues.values()]
    return _page(
        "admin/overview.html",
        figures=figures,
        ready=ready,
        catalogues=catalogues,
        dependencies=svc.dependencies.status(),
        sites=svc.settings.sites,
    )


@bp.get("/audit")
def audit_events() -> Response:
    wanted = {k: request.args.get(k, "").strip() for k in FILTERS}
    rows = []
    for event in runtime().telemetry.recent():
        if _matches(event, wanted):
            rows.append(event)
            if len(rows) >= AUDIT_ROWS:
                break
    return _page("admin/audit.html", rows=rows, wanted=wanted, sites=runtime().settings.sites)


def _matches(event: dict[str, Any], wanted: dict[str, str]) -> bool:
    if wanted["site"] and event.get("site") != wanted["site"]:
        return False
    if wanted["email"] and str(event.get("email", "")).lower() != wanted["email"].lower():
        return False
    if wanted["event"] and wanted["event"] not in str(event.get("event", "")):
        return False
    outcome = str(event.get("outcome") or event.get("event", ""))
    return not wanted["outcome"] or wanted["outcome"] in outcome


@bp.get("/why")
def why() -> Response:
    svc = runtime()
    email = request.args.get("email", "").strip()[:254]
    site = svc.settings.sites.get(request.args.get("site", ""))
    # ?video=N (the documented name) or ?photo_id=N (the form's field)
    raw_video = (request.args.get("video") or request.args.get("photo_id") or "").strip()
    video = photo_id(raw_video) if raw_video else None
    bad_video = bool(raw_video) and video is None
    found = None
    if site is not None and "@" in email and not bad_video:
        found = diagnose(svc, site, email, video)
    asked = bool(request.args)
    return _page(
        "admin/why.html",
        diagnosis=found,
        email=email,
        asked=asked,
        sites=svc.settings.sites,
        video=raw_video[:20],
        bad_video=bad_video,
    )


@bp.get("/config")
def config() -> Response:
    settings = runtime().settings
    return _page("admin/config.html", text=as_toml(masked(settings)), source=settings.source)


@bp.app_template_filter("utc")
def utc(stamp: Any) -> str:
    import time

    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(stamp)))
    except (TypeError, ValueError):
        return ""


@bp.app_template_filter("when")
def when(stamp: Any) -> str:
    """A moment in the operator's words: "4 min ago (2026-12-05 15:40:12 UTC)"."""
    import time

    try:
        moment = float(stamp)
    except (TypeError, ValueError):
        return ""
    delta = moment - time.time()
    span = abs(delta)
    if span < 90:
        words = f"{span:.0f} s"
    elif span < 5400:
        words = f"{span / 60:.0f} min"
    elif span < 2 * 86400:
        words = f"{span / 3600:.0f} h"
    else:
        words = plain("%(count)s days", count=f"{span / 86400:.0f}")
    relative = plain("in %(span)s", span=words) if delta > 0 else plain("%(span)s ago", span=words)
    return f"{relative} ({utc(moment)} UTC)"


_SHOWN_ELSEWHERE = frozenset({"ts", "event", "site", "email", "audit"})
_MOMENTS = frozenset({"expire", "until", "valid_until"})  # Unix seconds, shown in words


@bp.app_template_filter("details")
def details(event: dict[str, Any]) -> str:
    """The rest of an audit event, compactly (audit lines never hold tokens or secrets)."""
    parts = []
    for key, value in event.items():
        if key in _SHOWN_ELSEWHERE or value in (None, "", [], {}):
            continue
        if key in _MOMENTS:
            text = when(value)
        else:
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key}: {text[:120]}")
    return "; ".join(parts)


# ---------------------------------------------------------------- sessions and lockouts


@bp.get("/sessions")
def sessions() -> Response:
    """One person's live sessions, and a way to sign them out everywhere."""
    email = request.args.get("email", "").strip()[:254]
    found = runtime().sessions.of_person(email) if "@" in email else []
    return _page("admin/sessions.html", email=email, sessions=found, asked="email" in request.args)


@bp.post("/sessions/revoke")
def revoke_sessions() -> Response:
    operator: SignedSession = request.environ["gateway.operator"]
    access.check_csrf(operator)
    email = request.form.get("email", "").strip()[:254]
    if "@" not in email:
        raise BadRequest("Give the person's e-mail address.", code="invalid_email")
    ended = runtime().sessions.revoke_person(email)
    audit("sessions_revoked", email=email, operator=operator.identity.email, listed=ended)
    return redirect(url_for("admin.sessions", email=email, done=1), code=303)


@bp.get("/lockouts")
def lockouts() -> Response:
    svc = runtime()
    account = request.args.get("account", "").strip()[:254]
    found = current_lockouts(svc.store, svc.limiter, account)
    return _page("admin/lockouts.html", lockouts=found, account=account)


@bp.post("/lockouts/lift")
def lift() -> Response:
    operator: SignedSession = request.environ["gateway.operator"]
    access.check_csrf(operator)
    svc = runtime()
    account = request.form.get("account", "").strip()[:254]
    entry = lift_lockout(svc.store, svc.limiter, request.form.get("limit", ""), account)
    if entry is None:
        raise NotFound("That lockout is no longer in force.", code="no_such_lockout")
    audit(
        "lockout_lifted",
        operator=operator.identity.email,
        scope=entry["scope"],
        account=entry["account"],
        client_ip=entry["address"],
        provider=entry["provider"],
    )
    return redirect(url_for("admin.lockouts", done=1, account=account or None), code=303)
