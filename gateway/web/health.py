"""Operator endpoints: liveness, readiness (a cached signed call per site) and metrics.

``/metrics`` needs ``Authorization: Bearer <metrics_token>`` when ``[gateway] metrics_token``
is set (compared in constant time), so the public port does not publish the gateway's
traffic to anyone who asks.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

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
from gateway.twentythree.readiness import SiteHealth
from gateway.web.current import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return Response('{"status":"ok"}', mimetype="application/json")


SITE_WAIT = 1.0  # seconds /readyz waits for a site check before giving its last known result


@bp.get("/readyz")
def readyz() -> Response:
    """200 while this instance can serve: its config is loaded and its own state (store,
    database) answers. A 23 site that does not answer is ``degraded``, not a failure: an outage
    of 23 is shared by every instance, and taking them all out of service would hide the
    gateway's own error pages and stop cached minting. ``?strict=1`` fails on those too (for
    dashboards and alerts). Sites are checked at most every readiness_interval seconds, and
    a probe never waits on 23 for longer than SITE_WAIT."""
    svc = runtime()
    strict = request.args.get("strict", "") in ("1", "true", "yes")
    dependencies = svc.dependencies.status()
    broken = [d.name for d in dependencies if not d.ok]
    # With its own state broken, answer at once from what is known: the balancer is waiting.
    sites = (
        svc.readiness.known()
        if broken
        else svc.readiness.status(wait_at_most=None if strict else SITE_WAIT)
    )
    catalogues = [c.health() for c in svc.catalogues.values()]
    degraded = _degraded(sites, catalogues)
    failing = broken + (degraded if strict else [])
    body: dict[str, object] = {
        "status": "fail" if failing else "degraded" if degraded else "ok",
        "failing": failing,
        "degraded": degraded,
        "dependencies": [d.to_dict() for d in dependencies],
        "sites": [s.to_dict() for s in sites],
    }
    if catalogues:
        body["catalogues"] = catalogues
    response = jsonify(body)
    response.status_code = 503 if failing else 200
    return response


def _degraded(sites: list[SiteHealth], catalogues: list[dict[str, Any]]) -> list[str]:
    """Sites whose 23 check failed, or whose catalogue is older than catalogue_max_age."""
    degraded = [s.site for s in sites if not s.ok and s.code != "unchecked"]
    return degraded + [c["site"] for c in catalogues if not c["ok"] and c["site"] not in degraded]


@bp.get("/metrics")
def metrics() -> Response:
    token = runtime().settings.gateway.metrics_token.get_secret_value()
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
    shared.register(CatalogueCollector(runtime().catalogues))
    return Response(data + generate_latest(shared), mimetype=CONTENT_TYPE_LATEST)
