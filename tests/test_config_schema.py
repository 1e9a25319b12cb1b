"""``gateway config-schema``: a JSON Schema editors can check a file against while it is typed.
Every example and the demo's config pass it; a typo, a wrong type or an unknown identity type
does not; secrets are write-only strings; keys carry their descriptions."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.helpers import gateway_cli

ROOT = Path(__file__).resolve().parent.parent
FILES = [*sorted((ROOT / "config" / "examples").glob("*.toml")), ROOT / "config" / "gateway.toml"]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    printed = gateway_cli("config-schema")
    assert printed.returncode == 0, printed.stderr
    found: dict[str, Any] = json.loads(printed.stdout)
    jsonschema.Draft202012Validator.check_schema(found)
    return found


def _errors(schema: dict[str, Any], data: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_shipped_config_passes_the_schema(schema: dict[str, Any], path: Path) -> None:
    assert _errors(schema, tomllib.loads(path.read_text())) == []


def test_typos_and_wrong_types_fail(schema: dict[str, Any]) -> None:
    data = tomllib.loads((ROOT / "config" / "gateway.toml").read_text())
    data["sites"]["demo"]["catalouge"] = "sync"  # a typo
    data["gateway"]["session_idle"] = "1800"  # a string for a number
    data["identity"]["extra"] = {"type": "kerberos"}  # no such type
    errors = _errors(schema, data)
    assert any("catalouge" in e for e in errors)
    assert any(e.startswith("gateway.session_idle") for e in errors)
    assert any(e.startswith("identity.extra") for e in errors)


def test_secrets_are_write_only_and_keys_are_described(schema: dict[str, Any]) -> None:
    site = schema["$defs"]["SiteSettings"]["properties"]
    assert site["api_token"]["writeOnly"] is True and site["api_token"]["type"] == "string"
    assert site["consumer_secret"]["writeOnly"] is True
    assert site["api_version"]["enum"] == [1, 2] and site["api_version"]["default"] == 2
    assert "typed JSON" in site["api_version"]["description"]
    assert "name" not in site  # set by the loader, never in the file
    oidc = schema["$defs"]["OidcSettings"]["properties"]
    assert oidc["client_secret"]["writeOnly"] is True and oidc["issuer"]["description"]
