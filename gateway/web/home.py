"""The gateway's own landing page: what this is, with no configuration details."""

from __future__ import annotations

from flask import Blueprint, Response

bp = Blueprint("home", __name__)

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>23 Gateway</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;
color:#1d1d1f}h1{font-size:1.5rem}code{background:#f2f2f4;padding:.1rem .3rem;border-radius:4px}
</style></head><body><h1>23 Gateway is running</h1>
<p>This service signs visitors in to closed 23 Video sites and mints expiring video links.
There is nothing to do here directly: visitors arrive from their video site.</p>
<p>Operators: <a href="/healthz"><code>/healthz</code></a> ·
<a href="/readyz"><code>/readyz</code></a> · <a href="/metrics"><code>/metrics</code></a></p>
</body></html>"""


@bp.get("/")
def index() -> Response:
    return Response(_PAGE, mimetype="text/html")
