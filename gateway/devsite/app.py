"""The emulated closed 23 site: its API (``api``), its visitor-facing pages (``pages``) and
the tests' controls (``controls``), sharing one ``EmulatedSite``.

Strict on purpose: whatever it accepts, a real 23 site would accept. OAuth signatures are
verified by oauthlib, permission levels are enforced, tokens are single use, and legacy calls
without ``format=json&raw=1`` get XML as on 23.
"""

from __future__ import annotations

from flask import Flask

from gateway.devsite import api, controls, pages
from gateway.devsite.site import ApiFailure, DevsiteOptions, EmulatedSite

__all__ = ["ApiFailure", "DevsiteOptions", "create_devsite"]


def create_devsite(options: DevsiteOptions | None = None) -> Flask:
    site = EmulatedSite(options or DevsiteOptions())
    app = Flask("gateway.devsite")
    app.extensions["devsite"] = site
    app.config["DEVSITE_OPTIONS"] = site.options  # for tests and demos that look inside
    app.config["DEVSITE_STATE"] = site.state
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(controls.bp)
    return app
