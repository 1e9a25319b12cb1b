"""The deployment kit in deploy/: what can be checked without a cluster. Manifests parse and
hang together, the config they carry passes check-config, and every metric the alerts and
the dashboard query is one the gateway really exports on /metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient

from tests.helpers import gateway_cli

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
MONITORING = ROOT / "deploy" / "monitoring"


def _manifests() -> dict[str, dict[str, Any]]:
    docs = [yaml.safe_load(path.read_text()) for path in sorted(KUBE.glob("*.yaml"))]
    return {doc["kind"]: doc for doc in docs if doc and "kind" in doc}


def test_kubernetes_manifests_parse_and_cover_a_deployment() -> None:
    kinds = _manifests()
    for kind in (
        "Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget",
        "HorizontalPodAutoscaler", "Kustomization",
    ):  # fmt: skip
        assert kind in kinds, kind
    listed = kinds["Kustomization"]["resources"]
    assert all((KUBE / name).is_file() for name in listed)
    assert "secret.example.yaml" not in listed  # the real Secret is made out of band


def test_deployment_probes_and_selectors_fit_together() -> None:
    kinds = _manifests()
    deployment = kinds["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert kinds["Service"]["spec"]["selector"].items() <= labels.items()
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = container["ports"][0]
    assert container["readinessProbe"]["httpGet"]["port"] in (port["name"], port["containerPort"])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config_path = next(e["value"] for e in container["env"] if e["name"] == "GATEWAY_CONFIG")
    assert config_path.startswith(mounted["config"] + "/")
    assert container["envFrom"][0]["secretRef"]["name"] == kinds["Secret"]["metadata"]["name"]


def test_the_configmap_config_passes_check_config_with_the_secrets_keys(tmp_path: Path) -> None:
    kinds = _manifests()
    text = kinds["ConfigMap"]["data"]["gateway.toml"]
    wanted = set(re.findall(r'"env:([A-Za-z_][A-Za-z0-9_]*)"', text))
    secret_keys = set(kinds["Secret"]["stringData"])
    assert wanted <= secret_keys, wanted - secret_keys
    config = tmp_path / "gateway.toml"
    config.write_text(text)
    env = {name: f"redis://redis:6379/0-{name}" for name in wanted}
    env["GATEWAY_REDIS_URL"] = "redis://redis:6379/0"
    env["GATEWAY_DATABASE_URL"] = "postgresql://gateway:pw@postgres:5432/gateway"
    env["GATEWAY_SECRET_KEY"] = "stand-in-secret-key-0123456789abcdef"
    result = gateway_cli("check-config", str(config), env=env, only_env=True)
    assert result.returncode == 0, result.stderr


def test_the_examples_own_placeholder_secrets_are_refused(tmp_path: Path) -> None:
    """Copied unchanged, the Secret example and compose's env.example do not start a gateway."""
    kinds = _manifests()
    config = tmp_path / "gateway.toml"
    config.write_text(kinds["ConfigMap"]["data"]["gateway.toml"])
    env = {**kinds["Secret"]["stringData"], "GATEWAY_REDIS_URL": "redis://redis:6379/0"}
    compose_env = (ROOT / "deploy" / "compose" / "env.example").read_text()
    compose_key = re.search(r"^GATEWAY_SECRET_KEY=(.+)$", compose_env, re.M)
    assert compose_key is not None
    for secret_key in (env["GATEWAY_SECRET_KEY"], compose_key.group(1)):
        keyed = {**env, "GATEWAY_SECRET_KEY": secret_key}
        result = gateway_cli("check-config", str(config), env=keyed, only_env=True)
        assert result.returncode == 2
        for key in ("gateway.secret_key", "gateway.metrics_token", "store.database_url"):
            assert f"{key}: is a placeholder" in result.stderr, result.stderr
        assert secret_key not in result.stderr


def test_the_systemd_unit_runs_the_documented_commands() -> None:
    unit = (ROOT / "deploy" / "systemd" / "twentythree-gateway.service").read_text()
    sections = set(re.findall(r"^\[(\w+)\]$", unit, re.M))
    assert sections == {"Unit", "Service", "Install"}
    assert re.search(r"^ExecStartPre=\S+/gateway check-config$", unit, re.M)
    assert re.search(r"^ExecStart=\S+/gateway serve ", unit, re.M)
    assert re.search(r"^User=gateway$", unit, re.M)


def _queries() -> list[str]:
    alerts = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return exprs


def _exported(text: str) -> set[str]:
    """Every series name /metrics can carry, from its ``# TYPE`` lines."""
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


def test_alerts_and_dashboard_query_metrics_the_gateway_exports(client: FlaskClient) -> None:
    assert client.get("/readyz").status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    exported = _exported(text)
    queried = {name for expr in _queries() for name in re.findall(r"\bgateway_[a-z_]+", expr)}
    assert queried, "the alerts and the dashboard query nothing"
    assert queried <= exported, queried - exported
    # Every label a query filters on is one the metric is defined with.
    from prometheus_client.metrics import MetricWrapperBase

    from gateway import metrics
    from gateway.twentythree.catalogue import CatalogueCollector

    defined = {
        m._name + ("_total" if m._type == "counter" else ""): set(m._labelnames)
        for m in vars(metrics).values()
        if isinstance(m, MetricWrapperBase)
    }
    defined |= {f.name: {"site"} for f in CatalogueCollector({}).collect()}  # per-site gauges
    for expr in _queries():
        for metric, selector in re.findall(r"\b(gateway_[a-z_]+)\{([^}]*)\}", expr):
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            used = set(re.findall(r"(\w+)\s*[=!~]+", selector))
            assert used <= defined[base] | {"le"}, (metric, used - defined[base])
        for grouped in re.findall(r"by \(([^)]*)\)", expr):
            names = {g.strip() for g in grouped.split(",")} - {"le"}
            assert any(names <= labels for labels in defined.values()), (expr, names)


@pytest.mark.parametrize("name", ["alerts.yml"])
def test_alert_rules_have_what_an_operator_reads(name: str) -> None:
    rules = yaml.safe_load((MONITORING / name).read_text())["groups"][0]["rules"]
    for rule in rules:
        assert rule["alert"] and rule["expr"] and rule["annotations"]["summary"]
        assert rule["labels"]["severity"] in {"critical", "warning"}
