"""Per-request plumbing: request ids, request metrics and security headers.

Every HTML page of the gateway gets a strict CSP (no script at all, styles from our own
file, no framing) and ``X-Frame-Options: DENY``: the sign-in and consent pages must never be
framed (clickjacking) nor run anything a crafted parameter could inject.
"""

from __future__ import annotations

import random
import re
import time

from flask import Flask, Response, g, request

from gateway import metrics
from gateway.logs import request_id_var

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def _new_request_id() -> str:
    return f"{random.getrandbits(128):032x}"


def install(app: Flask) -> None:
    @app.before_request
    def start() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        # A correlation id, not a secret: no need for the OS random source (a syscall each).
        g.request_id = incoming if _REQUEST_ID_RE.fullmatch(incoming) else _new_request_id()
        g.started = time.perf_counter()
        request_id_var.set(g.request_id)

    @app.after_request
    def finish(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "<unmatched>"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(endpoint).observe(elapsed)
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response
