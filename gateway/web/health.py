"""Operator endpoints: liveness, readiness (a cached signed call per site) and metrics.

``/metrics`` needs ``Authorization: Bearer <metrics_token>`` when ``[gateway] metrics_token``
is set (compared in constant time), so the public port does not publish the gateway's
traffic to anyone who asks.
"""

from __future__ import annotations

import hmac
import os

from flask import Blueprint, Response, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from gateway.errors import Unauthorized
from gateway.twentythree.catalogue import CatalogueCollector
from gateway.web.context import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return Response('{"status":"ok"}', mimetype="application/json")


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when the gateway's own state (store, database) answers and every site's API
    answered a signed call recently. A failing dependency is answered at once, with the
    sites' last known results rather than a fresh check that could keep the balancer waiting."""
    svc = services()
    dependencies = svc.dependencies.status()
    broken = [d.name for d in dependencies if not d.ok]
    sites = svc.readiness.known() if broken else svc.readiness.status()
    failing = broken + [s.site for s in sites if not s.ok and s.code != "unchecked"]
    # A catalogue older than catalogue_max_age (or none for that long) fails its site.
    catalogues = [c.health() for c in svc.catalogues.values()]
    failing += [c["site"] for c in catalogues if not c["ok"] and c["site"] not in failing]
    body: dict[str, object] = {
        "status": "fail" if failing else "ok",
        "failing": failing,
        "dependencies": [d.to_dict() for d in dependencies],
        "sites": [s.to_dict() for s in sites],
    }
    if catalogues:
        body["catalogues"] = catalogues
    response = jsonify(body)
    response.status_code = 503 if failing else 200
    return response


@bp.get("/metrics")
def metrics() -> Response:
    token = services().settings.gateway.metrics_token.get_secret_value()
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise Unauthorized(
                "Metrics need 'Authorization: Bearer <metrics_token>'.",
                code="metrics_token_required",
                challenge='Bearer realm="23-gateway-metrics"',
            )
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        data = generate_latest(registry)
    else:
        data = generate_latest(REGISTRY)
    shared = CollectorRegistry()  # figures every instance reads from the store alike
    shared.register(CatalogueCollector(services().catalogues))
    return Response(data + generate_latest(shared), mimetype=CONTENT_TYPE_LATEST)
