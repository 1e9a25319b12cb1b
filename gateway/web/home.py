"""The gateway's own landing page: what this is, with no configuration details."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from gateway.web.current import site_or_404

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> Response:
    return Response(render_template("home.html"), mimetype="text/html")


@bp.get("/theme/<site_name>.css")
def theme(site_name: str) -> Response:
    """A site's accent colour as CSS (the pages' CSP allows no inline style), with the text
    colour on it chosen for contrast."""
    site = site_or_404(site_name)
    accent = site.accent_color or "#1a5fd6"
    ink = "#000000" if _luminance(accent) > 0.18 else "#ffffff"
    css = f":root{{--accent:{accent};--accent-ink:{ink}}}\n"
    response = Response(css, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _luminance(color: str) -> float:
    """WCAG relative luminance of "#rrggbb"."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
