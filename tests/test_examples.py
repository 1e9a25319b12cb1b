"""Every example in config/examples/ passes `gateway check-config` as shipped (its env:
secrets set to stand-in values), so an operator can start from any of them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import gateway_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.toml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_passes_check_config(example: Path) -> None:
    names = set(re.findall(r'"env:([A-Za-z_][A-Za-z0-9_]*)"', example.read_text()))
    env = {name: f"stand-in-{name.lower()}-0123456789abcdef0123" for name in names}
    result = gateway_cli("check-config", str(example), env=env, only_env=True)
    assert result.returncode == 0, result.stderr
    assert "ok (" in result.stdout


# ---------------------------------------------------------------- deploy/compose

COMPOSE = ROOT / "deploy" / "compose"


def test_the_compose_topology_is_the_documented_one() -> None:
    import yaml

    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"nginx", "gateway-a", "gateway-b", "redis", "postgres", "devsite"}
    for name in ("gateway-a", "gateway-b"):
        env = services[name]["environment"]
        assert env["GATEWAY_REDIS_URL"].startswith("redis://redis:")
        assert env["GATEWAY_DATABASE_URL"].startswith("postgresql://")
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])
    assert services["nginx"]["ports"] == ["8443:8443"]
    nginx_ip = services["nginx"]["networks"]["default"]["ipv4_address"]
    assert f'"{nginx_ip}/32"' in (COMPOSE / "gateway.toml").read_text()  # trusted, alone


def test_the_compose_gateway_config_passes_check_config() -> None:
    env = {
        "GATEWAY_SECRET_KEY": "stand-in-secret-key-0123456789abcdef",
        "GATEWAY_REDIS_URL": "redis://redis:6379/0",
        "GATEWAY_DATABASE_URL": "postgresql://gateway:pw@postgres:5432/gateway",
    }
    result = gateway_cli("check-config", str(COMPOSE / "gateway.toml"), env=env, only_env=True)
    assert result.returncode == 0, result.stderr


def test_the_compose_nginx_config_is_valid(tmp_path: Path) -> None:
    """``nginx -t`` on the shipped file, with the containers' names and paths made local."""
    import shutil

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed: run `make test-deps`")
    (tmp_path / "tls").mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=gateway.localhost", "-keyout", str(tmp_path / "tls/gateway.key"),
         "-out", str(tmp_path / "tls/gateway.crt")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
    text = (COMPOSE / "nginx.conf").read_text()
    text = text.replace("gateway-a:8000", "127.0.0.1:1").replace("gateway-b:8000", "127.0.0.1:2")
    text = text.replace("/etc/nginx/tls", str(tmp_path / "tls"))
    if tuple(int(x) for x in re.findall(r"nginx/(\d+)\.(\d+)", version)[0]) < (1, 25):
        text = text.replace("http2 on;", "")  # Debian 12's nginx predates the directive
    (tmp_path / "nginx.conf").write_text(text)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
