"""Per-request plumbing around the Flask app: request ids, request metrics, security headers.

A WSGI middleware rather than Flask hooks: it works on the plain list of header tuples and on
prometheus children looked up once, so it costs the hot path a few microseconds, not the
tens that werkzeug's header object and ``labels()`` lookups took.

Every HTML page of the gateway gets a strict CSP (no script at all, styles from our own
file, no framing) and ``X-Frame-Options: DENY``: the sign-in and consent pages must never be
framed (clickjacking) nor run anything a crafted parameter could inject.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request

from gateway import metrics, tracing
from gateway.errors import MethodNotAllowed, error_json, json_error_headers, status_line
from gateway.logs import audit_sink_var, request_id_var
from gateway.web.current import runtime
from gateway.web.fastpath import WsgiApp

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{8,64}")
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data: https:; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DEFAULT_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
PAGE_HEADERS = (("Content-Security-Policy", PAGE_CSP), ("X-Frame-Options", "DENY"))
ROUTE_KEY = "gateway.route"
# Every label is bounded: a client choosing the method (or anything else it sends) must not
# add a time series per request. Other methods are answered 405 before anything counts them.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_RE = re.compile(r"[1-5][0-9][0-9]")
REQUEST_ID_KEY = "gateway.request_id"


class Observability:
    def __init__(self, app: WsgiApp, audit_sink: Callable[[str, dict[str, Any]], None]) -> None:
        self.app = app
        self._audit_sink = audit_sink
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._timers: dict[str, Any] = {}

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "") not in KNOWN_METHODS:
            return self._unknown_method(environ, start_response)
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        # A correlation id, not a secret: no need for the OS random source (a syscall each).
        rid = incoming if _REQUEST_ID_RE.fullmatch(incoming) else f"{random.getrandbits(128):032x}"
        environ[REQUEST_ID_KEY] = rid
        reset = request_id_var.set(rid)
        sink_reset = audit_sink_var.set(self._audit_sink)
        started = time.perf_counter()
        seen: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers.append(("X-Request-Id", rid))
            headers.extend(h for h in DEFAULT_HEADERS if h[0].lower() not in present)
            if any(n.lower() == "content-type" and v.startswith("text/html") for n, v in headers):
                headers.extend(h for h in PAGE_HEADERS if h[0].lower() not in present)
            seen.append(status[:3])
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            self._record(environ, seen[0] if seen else "500", time.perf_counter() - started)
            request_id_var.reset(reset)
            audit_sink_var.reset(sink_reset)

    def _unknown_method(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        error = MethodNotAllowed(tuple(sorted(KNOWN_METHODS)))
        error.message = "This HTTP method is not supported."
        body = error_json(error)
        start_response(
            status_line(error.status), [*json_error_headers(error, body), *DEFAULT_HEADERS]
        )
        self._record(environ, "405", 0.0)
        return [body]

    def _record(self, environ: dict[str, Any], status: str, elapsed: float) -> None:
        route = environ.get(ROUTE_KEY, "<unmatched>")
        method = environ.get("REQUEST_METHOD", "")
        key = (
            route,
            method if method in KNOWN_METHODS else "other",
            status if _STATUS_RE.fullmatch(status) else "other",
        )
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.REQUESTS.labels(*key)
        counter.inc()
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = metrics.REQUEST_SECONDS.labels(route)
        timer.observe(elapsed)


def install(app: Flask, audit_sink: Callable[[str, dict[str, Any]], None]) -> None:
    @app.before_request
    def note_route() -> None:
        rule = request.url_rule
        request.environ[ROUTE_KEY] = rule.rule if rule is not None else "<unmatched>"

    app.wsgi_app = Observability(app.wsgi_app, audit_sink)  # type: ignore[method-assign]
    if tracing.state.enabled:  # off: not even a no-op layer on the hot paths
        app.wsgi_app = Traced(app.wsgi_app)  # type: ignore[method-assign]

    @app.before_request
    def note_site() -> None:
        site = (request.view_args or {}).get("site_name")
        if isinstance(site, str) and site in runtime().sites:  # a configured name, never input
            tracing.annotate(**{"gateway.site": site})


class Traced:
    """One server span per request, named by its route template (never its path)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        with tracing.server_span(environ) as span:
            statuses: list[str] = []

            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                statuses.append(status[:3])
                return start_response(status, headers, exc_info)

            body = self.app(environ, start)
            route = environ.get(ROUTE_KEY, "<unmatched>")
            span.update_name(f"{environ.get('REQUEST_METHOD', 'GET')} {route}")
            span.set_attribute("http.route", route)
            if statuses and statuses[0].isdigit():
                span.set_attribute("http.response.status_code", int(statuses[0]))
            return body
