"""Operator endpoints and the JSON error contract."""

from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient

from gateway import create_app
from tests.helpers import DEMO_SUPER, Devsite, make_settings, site_table


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_ok_with_super_credentials(client: FlaskClient, devsite: Devsite) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["sites"][0] == {
        **response.json["sites"][0],
        "site": "demo",
        "ok": True,
        "permission_level": "super",
    }
    client.get("/readyz")
    assert len(devsite.calls()) == 1  # cached: probes do not hammer 23


def test_readyz_names_the_failing_site(devsite: Devsite) -> None:
    wrong = (DEMO_SUPER[0], "wrong-secret", DEMO_SUPER[2], DEMO_SUPER[3])
    app = create_app(
        make_settings({"good": site_table(devsite.url), "bad": site_table(devsite.url, wrong)})
    )
    relaxed = app.test_client().get("/readyz")  # this instance serves; the site is degraded
    assert relaxed.status_code == 200 and relaxed.json["status"] == "degraded"
    assert relaxed.json["degraded"] == ["bad"] and relaxed.json["failing"] == []
    response = app.test_client().get("/readyz?strict=1")
    assert response.status_code == 503
    body = response.json
    assert body["failing"] == ["bad"]
    bad = next(s for s in body["sites"] if s["site"] == "bad")
    assert bad["code"] == "invalid_signature" and bad["ok"] is False
    assert "wrong-secret" not in response.get_data(as_text=True)


def test_readyz_refuses_credentials_below_super(devsite: Devsite) -> None:
    from tests.helpers import DEMO_READ

    app = create_app(make_settings({"demo": site_table(devsite.url, DEMO_READ)}))
    response = app.test_client().get("/readyz?strict=1")
    assert response.status_code == 503
    assert response.json["sites"][0]["code"] == "insufficient_permission"


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("down", "upstream_unavailable"),
        ("garbage", "upstream_bad_response"),
        ("hang", "upstream_timeout"),
    ],
)
def test_readyz_when_23_fails(devsite: Devsite, client: FlaskClient, mode: str, code: str) -> None:
    devsite.mode(mode, seconds=2)
    response = client.get("/readyz?strict=1")
    assert response.status_code == 503 and response.json["sites"][0]["code"] == code


def test_metrics_exposition(client: FlaskClient) -> None:
    client.get("/readyz")
    text = client.get("/metrics").get_data(as_text=True)
    assert "gateway_http_requests_total" in text
    assert 'gateway_upstream_calls_total{method="photo/list",outcome="ok",site="demo"}' in text


def test_unknown_paths_and_methods_are_json(client: FlaskClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong = client.post("/healthz")
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"


def test_oversized_bodies_are_refused(client: FlaskClient) -> None:
    response = client.post(
        "/pingback/demo",
        data=b"type=photo&photo_id=1&x=" + b"a" * (65 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"


def test_request_ids(client: FlaskClient) -> None:
    given = client.get("/healthz", headers={"X-Request-Id": "abc12345-ok"})
    assert given.headers["X-Request-Id"] == "abc12345-ok"
    hostile = client.get("/healthz", headers={"X-Request-Id": 'bad" id'})
    assert len(hostile.headers["X-Request-Id"]) == 32


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and "23 Gateway" in response.get_data(as_text=True)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_unexpected_errors_are_json_without_details(client: FlaskClient, app) -> None:  # type: ignore[no-untyped-def]
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail")

    response = client.get("/boom")
    assert response.status_code == 500
    assert response.json == {
        "error": {"code": "internal_error", "message": "The gateway could not handle this request."}
    }


def test_logs_are_json_with_request_id() -> None:
    from gateway.logs import JsonFormatter, _StampRequestId, request_id_var

    request_id_var.set("rid-1234")
    record = logging.makeLogRecord(
        {
            "name": "gateway.audit",
            "msg": "granted",
            "levelname": "INFO",
            "site": "demo",
            "email": "a@example.com",
        }
    )
    assert _StampRequestId().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "rid-1234" and entry["site"] == "demo"
    assert entry["msg"] == "granted" and entry["level"] == "info"


def test_a_missing_page_speaks_the_visitors_language(client: FlaskClient) -> None:
    """Review: the 404 page was English under a Danish title."""
    page = client.get("/no/such/page", headers={"Accept": "text/html", "Accept-Language": "da"})
    text = page.get_data(as_text=True)
    assert page.status_code == 404
    assert "Her er ingenting" in text and "Der er intet på denne adresse" in text
    assert "The requested URL was not found" not in text
