"""23 Gateway: SSO and signed access for TwentyThree (23 Video) sites."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from gateway.settings import Settings

__version__ = "0.1.0"
MAX_BODY = 64 * 1024  # bytes of request body, for every endpoint


def create_app(settings: Settings | None = None) -> Flask:
    """Wire the Flask application: settings, runtime, plumbing and blueprints. Nothing else."""
    from gateway import tracing
    from gateway.loader import load_settings
    from gateway.logs import configure_logging
    from gateway.runtime import GatewayRuntime
    from gateway.web.jsonprovider import GatewayFlask

    settings = settings or load_settings()
    configure_logging(settings.gateway.log_level)
    tracing.configure_tracing()  # only when the OTEL_* variables ask for it
    app = GatewayFlask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY)
    # "//x" must not become a redirect built from the Host header: merged slashes are a 404.
    app.url_map.merge_slashes = False
    gateway_runtime = GatewayRuntime.build(settings)
    app.extensions["gateway.runtime"] = gateway_runtime
    gateway_runtime.start()  # in the serving process: a worker that forks has its own loop
    _install_plumbing(app)
    _register_views(app)
    return app


def _install_plumbing(app: Flask) -> None:
    """Outermost first: request id, headers and metrics; whole bodies; the mint and embed hot
    paths (each passes anything else on, to Flask). All read the runtime *now*: a reload
    swaps it."""
    from gateway.runtime import GatewayRuntime
    from gateway.web import errors, mint_api, observability
    from gateway.web.bodylimit import RequestBodies
    from gateway.web.embed_fast import EmbedFastPath

    def current() -> GatewayRuntime:
        return app.extensions["gateway.runtime"]  # type: ignore[no-any-return]

    minting = mint_api.MintApi(EmbedFastPath(app.wsgi_app, current), current)
    app.wsgi_app = RequestBodies(minting, MAX_BODY)  # type: ignore[method-assign]
    observability.install(app, lambda event, fields: current().telemetry.audited(event, fields))
    errors.register_error_handlers(app)


def _register_views(app: Flask) -> None:
    """Every blueprint, and what every template may use."""
    from gateway.admin import views as admin_views
    from gateway.i18n import gettext, language, money, per_interval
    from gateway.web import (
        account,
        health,
        home,
        links,
        pingback,
        protection,
        sso,
        uploads,
        webhooks,
    )
    from gateway.web.message_pages import brand_of

    for module in (health, home, pingback, sso, links, protection, webhooks, uploads, account):
        app.register_blueprint(module.bp)
    app.register_blueprint(admin_views.bp)
    app.jinja_env.globals.update(
        _=gettext, brand_of=brand_of, money=money, per_interval=per_interval
    )
    app.context_processor(lambda: {"lang": language()})
