"""OpenTelemetry traces, in a process of their own (the SDK's provider is set once per
process): a server span per request named by its route template, client spans for every 23
call with the ``traceparent`` sent along, trace ids in the log lines, and no secret, token,
cookie, e-mail address or query string in any exported span."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.helpers import TEST_SECRET, Devsite

KEY = "tracing-test-key-0123456789"

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry import trace
    from gateway import tracing
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing({}, exporter=exporter)
    from gateway import create_app
    from tests.helpers import make_settings, site_table
    devsite, digest, out = sys.argv[1], sys.argv[2], sys.argv[3]
    app = create_app(make_settings(
        {"demo": site_table(devsite, identity="proxy")},
        gateway={"trusted_proxies": ["127.0.0.1/32"]},
        identity={"proxy": {"type": "header", "email_header": "X-Email"}},
        api_keys={"cms": {"key_sha256": digest, "sites": ["demo"]}},
    ))
    client = app.test_client()
    auth = {"Authorization": "Bearer " + sys.argv[4]}
    assert client.post("/api/v1/sites/demo/tokens", json={"photo_ids": [1001, 1002]},
                       headers=auth).status_code == 200
    who = {"X-Email": "ada@example.com", "traceparent":
           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    login = client.get("/sso/demo/login?return_url=" + devsite + "/", headers=who)
    assert login.status_code == 302, login.status_code
    assert client.get("/embed/demo/1003", headers=who).status_code in (302, 404)
    trace.get_tracer_provider().force_flush()
    spans = [json.loads(s.to_json()) for s in exporter.get_finished_spans()]
    with open(out, "w") as handle:
        json.dump(spans, handle)
    """
)


def _exported(devsite: Devsite, tmp_path: Path) -> tuple[list[dict[str, Any]], str, str]:
    """Run the script in its own process: the spans it exported, as JSON and as text, and its
    log lines."""
    out = tmp_path / "spans.json"
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, devsite.url, digest, str(out), KEY],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), out.read_text(), run.stdout


def _named(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(s for s in spans if s["name"] == name)


def test_spans_name_routes_carry_traceparent_and_hold_no_secret(
    devsite: Devsite, tmp_path: Path
) -> None:
    spans, dump, logged = _exported(devsite, tmp_path)
    names = {span["name"] for span in spans}
    assert {"POST /api/v1/sites/<site_name>/tokens", "GET /sso/<site_name>/login"} <= names
    assert {"23 photo/list", "23 session/get-token"} <= names
    login = _named(spans, "GET /sso/<site_name>/login")
    assert login["context"]["trace_id"] == "0x0af7651916cd43dd8448eb211c80319c"  # continued
    assert login["attributes"]["gateway.site"] == "demo"
    assert login["attributes"]["http.route"] == "/sso/<site_name>/login"
    handoff = _named(spans, "23 session/get-token")
    assert handoff["kind"] == "SpanKind.CLIENT"
    assert handoff["parent_id"] == login["context"]["span_id"]
    assert handoff["attributes"]["gateway.outcome"] == "ok"
    assert all(c["traceparent"] for c in devsite.calls() if c.get("method"))  # sent to 23
    for secret in (KEY, "demo-super-consumer-secret", "demo-super-access-secret",
                   "ada@example.com", "return_url", TEST_SECRET, "gw_session"):  # fmt: skip
        assert secret not in dump, secret
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    granted = next(line for line in lines if line.get("msg") == "sso_granted")
    assert granted["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
