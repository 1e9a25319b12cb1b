"""Settings: the INTERFACE §1 contract, with every problem reported at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.loader import load_settings, parse_settings
from gateway.settings import ConfigError
from tests.helpers import make_settings, site_table

ROOT = Path(__file__).resolve().parent.parent
HEX = "ab" * 32


def _base(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "gateway": {"public_url": "https://sso.example.com", "secret_key": "s" * 32},
        "sites": {
            "intranet": {
                "url": "https://video.example.com",
                "consumer_key": "ck",
                "consumer_secret": "cs",
                "access_token": "at",
                "access_token_secret": "as",
            }
        },
    }
    doc.update(over)
    return doc


def _problems(doc: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(doc, env=env or {})
    return info.value.problems


def test_the_interface_example_parses() -> None:
    doc = _base()
    doc["gateway"].update(secret_key="env:GATEWAY_SECRET_KEY", trusted_proxies=["127.0.0.1/32"])
    doc["sites"]["intranet"].update(
        consumer_secret="env:INTRANET_CS",
        identity="corp",
        allow_email_domains=["Example.com"],
        allow_groups=[],
        return_hosts=[],
        login_mode="session",
        expire_bucket=0,
        require_entitlement="",
    )
    doc["store"] = {"url": "", "database_url": "sqlite:///gateway.db"}
    doc["identity"] = {
        "corp": {
            "type": "oidc",
            "issuer": "https://login.example.com",
            "client_id": "23-gateway",
            "client_secret": "env:OIDC_SECRET",
        }
    }
    doc["api_keys"] = {
        "cms": {"key_sha256": HEX, "sites": ["intranet"], "max_ttl": 86400, "rate_limit": 0}
    }
    env = {"GATEWAY_SECRET_KEY": "k" * 40, "INTRANET_CS": "from-env", "OIDC_SECRET": "oidc"}
    settings = parse_settings(doc, env=env)
    site = settings.sites["intranet"]
    assert site.consumer_secret.get_secret_value() == "from-env"
    assert site.identities == ("corp",)
    assert site.allow_email_domains == ("example.com",) and site.host == "video.example.com"
    assert settings.gateway.secret_keys == ("k" * 40,)
    corp: Any = settings.identities["corp"]
    assert corp.scopes == ("openid", "email", "profile")
    assert corp.client_secret.get_secret_value() == "oidc"
    assert settings.api_keys["cms"].key_sha256 == bytes.fromhex(HEX)
    assert "from-env" not in repr(settings)  # secrets stay out of reprs (and so of logs)


def test_an_unset_variable_is_one_problem_per_key() -> None:
    doc = _base()
    doc["gateway"]["secret_key"] = "env:UNSET_SECRET_KEY"
    doc["sites"]["intranet"]["consumer_secret"] = "env:UNSET_CONSUMER_SECRET"
    assert _problems(doc) == [
        "gateway.secret_key: environment variable UNSET_SECRET_KEY is not set",
        "sites.intranet.consumer_secret: environment variable UNSET_CONSUMER_SECRET is not set",
    ]


def test_secret_key_list_for_rotation() -> None:
    doc = _base()
    doc["gateway"]["secret_key"] = ["n" * 32, "o" * 32]
    assert parse_settings(doc, env={}).gateway.secret_keys == ("n" * 32, "o" * 32)


def test_every_problem_at_once_with_dotted_keys() -> None:
    doc = _base(store={"url": "memcached://x"}, extra_section={})
    doc["gateway"].update(
        public_url="http://sso.example.com",
        secret_key="short",
        typo_key=1,
        trusted_proxies=["not-a-cidr"],
    )
    doc["sites"]["intranet"].update(
        url="http://video.example.com",
        consumer_secret="env:MISSING",
        login_mode="magic",
        expire_bucket=-1,
        identity=["nope"],
        allow_email_domains=["exa mple.com"],
        alow_groups=[],
    )
    doc["sites"]["bad name!"] = {}
    doc["api_keys"] = {"cms": {"key_sha256": "xyz", "sites": ["elsewhere"], "max_ttl": 0}}
    doc["identity"] = {
        "corp": {"type": "kerberos"},
        "idp": {"type": "ldap"},
        "pw": {"type": "jwt", "issuer": "i", "audience": "a"},
    }
    problems = _problems(doc)
    expected = [
        "extra_section: unknown section",
        "gateway.typo_key: unknown key",
        "gateway.public_url: must be https",
        "gateway.secret_key: every key must be at least 32 bytes",
        "gateway.trusted_proxies[0]: must be an IP address or CIDR block",
        "store.url: must be empty (in-process) or a redis:// URL",
        "sites.intranet.consumer_secret: environment variable MISSING is not set",
        "sites.intranet.url: must be https",
        "sites.intranet.alow_groups: unknown key",
        "sites.intranet.login_mode: must be one of",
        "sites.intranet.expire_bucket: must be at least 0",
        "sites.intranet.identity: names no [identity.nope] table",
        "sites.intranet.allow_email_domains: must hold plain",
        "sites.bad name!: name must be",
        "api_keys.cms.key_sha256: must be 64 hex digits",
        "api_keys.cms.sites: names no [sites.elsewhere] table",
        "api_keys.cms.max_ttl: must be at least 1",
        "identity.corp.type: must be one of",
        "identity.idp.url: is required",
        "identity.pw: set exactly one of secret (HS256) or jwks_url",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert not any("from-env" in p or "short" in p for p in problems)  # values never echoed


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8023",
        "http://127.0.0.1:8023",
        "http://[::1]:8023",
        "https://video.example.com/",
    ],
)
def test_http_only_for_loopback(url: str) -> None:
    doc = _base()
    doc["sites"]["intranet"]["url"] = url
    assert parse_settings(doc, env={}).sites["intranet"].url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1",
        "ftp://video.example.com",
        "https://user:pw@video.example.com",
        "https://video.example.com/x",
        "https://video.example.com?q=1",
        "video.example.com",
        "http://127.0.0.1.evil.com",
        "https://h:99999",
    ],
)
def test_bad_site_urls(url: str) -> None:
    doc = _base()
    doc["sites"]["intranet"]["url"] = url
    assert any(p.startswith("sites.intranet.url:") for p in _problems(doc))


def test_missing_required_keys_and_sections() -> None:
    problems = _problems({"gateway": {}})
    assert "gateway.public_url: is required" in problems
    assert "gateway.secret_key: is required" in problems
    assert "sites: at least one [sites.<name>] table is required" in problems
    problems = _problems(_base(sites={"x": {"url": "https://a.example.com"}}))
    for key in ("consumer_key", "consumer_secret", "access_token", "access_token_secret"):
        assert f"sites.x.{key}: is required" in problems


def test_types_are_checked() -> None:
    doc = _base()
    doc["sites"]["intranet"].update(
        expire_bucket="60", return_hosts="a.example.com", allow_groups=[1]
    )
    problems = _problems(doc)
    assert "sites.intranet.expire_bucket: must be an integer" in problems
    assert "sites.intranet.return_hosts: must be a list of non-empty strings" in problems
    assert "sites.intranet.allow_groups: must be a list of non-empty strings" in problems


def test_identity_type_keys() -> None:
    doc = _base(
        identity={
            "proxy": {"type": "header", "email_header": "X-Email", "bogus": 1},
            "team": {"type": "static", "users": [{"email": "a@b.c", "password_hash": "plain"}]},
            "pay": {"type": "stripe", "secret_key": "sk", "webhook_secret": "wh", "price": "p"},
        }
    )
    problems = _problems(doc)
    assert "identity.proxy.bogus: unknown key" in problems
    assert any(p.startswith("identity.team.users: password_hash must come from") for p in problems)
    assert "identity.pay.product: is required" in problems


def test_visitor_ttl_and_stripe_mode() -> None:
    doc = _base(
        identity={
            "pay": {
                "type": "stripe",
                "secret_key": "sk",
                "webhook_secret": "wh",
                "price": "p",
                "product": "gold",
                "mode": "setup",
            }
        }
    )
    doc["sites"]["intranet"].update(visitor_ttl=30)
    problems = _problems(doc)
    assert any(p.startswith("sites.intranet.visitor_ttl:") for p in problems)
    assert any(p.startswith("identity.pay.mode:") for p in problems)
    doc["sites"]["intranet"]["visitor_ttl"] = 600
    doc["identity"]["pay"]["mode"] = "payment"
    settings = parse_settings(doc, env={})
    assert settings.sites["intranet"].visitor_ttl == 600
    assert settings.identities["pay"].mode == "payment"


def test_duplicate_api_key_hashes() -> None:
    doc = _base(
        api_keys={
            "a": {"key_sha256": HEX, "sites": ["intranet"]},
            "b": {"key_sha256": HEX.upper(), "sites": "intranet"},
        }
    )
    assert "api_keys: two keys share the same key_sha256" in _problems(doc)


def test_load_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)


def test_gateway_config_env_var_and_demo_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for name, value in DEMO_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    assert load_settings().source == "config/gateway.toml"
    for example in sorted((ROOT / "config").glob("*.toml")):
        monkeypatch.setenv("GATEWAY_CONFIG", str(example))
        assert load_settings().source == str(example)


DEMO_ENV = {  # what scripts/run-demo.sh exports for config/gateway.toml
    "GATEWAY_SECRET_KEY": "y" * 32,
    "DEMO_GATEWAY_URL": "http://127.0.0.1:8000",
    "DEMO_SITE_URL": "http://127.0.0.1:8023",
}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_check_config_cli(tmp_path: Path) -> None:
    ok = _cli("check-config", "config/gateway.toml", env=DEMO_ENV)
    assert ok.returncode == 0, ok.stderr
    assert "ok (1 site(s)" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[gateway]\npublic_url = "http://example.com"\nsecret_key = "x"\n')
    result = _cli("check-config", str(bad), env={})
    assert result.returncode == 2
    assert "gateway.public_url: must be https" in result.stderr
    assert "gateway.secret_key: every key must be" in result.stderr
    assert "sites: at least one" in result.stderr


@pytest.mark.parametrize(
    "placeholder",
    [
        "replace-me-with-a-long-random-string",  # deploy/compose/env.example
        "replace-me: 32+ random bytes",  # deploy/kubernetes/secret.example.yaml
        "CHANGEME-CHANGEME-CHANGEME-CHANGEME",
        "<your secret key goes here, at least 32 bytes>",
    ],
)
def test_placeholder_secrets_are_refused_naming_the_key(placeholder: str) -> None:
    doc = _base()
    doc["gateway"]["secret_key"] = placeholder
    doc["gateway"]["metrics_token"] = placeholder
    doc["sites"]["intranet"]["consumer_secret"] = placeholder
    problems = _problems(doc)
    for key in ("gateway.secret_key", "gateway.metrics_token", "sites.intranet.consumer_secret"):
        assert any(p.startswith(f"{key}: is a placeholder") for p in problems), problems
    assert not any(placeholder in p for p in problems)  # the value itself is never echoed


def test_a_secret_key_needs_32_bytes() -> None:
    doc = _base()
    doc["gateway"]["secret_key"] = "k" * 31
    assert _problems(doc) == ["gateway.secret_key: every key must be at least 32 bytes"]
    doc["gateway"]["secret_key"] = "æ" * 16  # 32 bytes in UTF-8
    assert parse_settings(doc, env={}).gateway.secret_keys == ("æ" * 16,)


def test_a_site_gives_oauth_keys_or_an_api_token() -> None:
    """23 as documented today: api_version 2 by default; an api_token instead of the four
    OAuth keys (never both, never on the legacy dialect); a pingback_key of real length."""
    token_only = {"url": "https://video.example.com", "api_token": "env:API_TOKEN"}
    settings = parse_settings(_base(sites={"t": token_only}), env={"API_TOKEN": "x" * 40})
    site = settings.sites["t"]
    assert site.api_version == 2 and site.bearer and not site.consumer_key
    both = _base()
    both["sites"]["intranet"]["api_token"] = "x" * 40
    assert _problems(both) == [
        "sites.intranet: give either api_token or the four OAuth keys, not both"
    ]
    legacy = _base(sites={"t": {**token_only, "api_token": "x" * 40, "api_version": 1}})
    assert any("api_token needs api_version = 2" in p for p in _problems(legacy))
    assert any(
        "api_version" in p
        for p in _problems(
            _base(sites={"t": {**token_only, "api_version": 3}}), {"API_TOKEN": "x" * 40}
        )
    )
    short = _base()
    short["sites"]["intranet"]["pingback_key"] = "short"
    assert any("pingback_key must be 16 to 128" in p for p in _problems(short))
    assert all("short" not in p for p in _problems(short))  # a secret is never echoed


def test_uploads_name_who_may_upload() -> None:
    doc = _base()
    doc["sites"]["intranet"]["uploads"] = {"album_ids": [9001]}
    assert _problems(doc) == [
        "sites.intranet.uploads: list allow_emails or allow_groups: who may upload"
    ]
    doc["sites"]["intranet"]["uploads"] = {"allow_emails": ["a@example.com"], "valid_minutes": 5}
    assert _problems(doc) == ["sites.intranet.uploads.valid_minutes: must be at least 15"]
    doc["sites"]["intranet"]["uploads"] = {"allow_groups": ["video-staff"]}
    settings = parse_settings(doc)
    uploads = settings.sites["intranet"].uploads
    assert uploads is not None and not uploads.publish and uploads.valid_minutes == 60
    assert "video-staff" in settings.used_groups()  # kept in sessions


def test_a_checkout_address_cannot_sign_in_as_a_23_user() -> None:
    """login_mode = "user" signs a visitor in as the 23 user with their address; a stripe
    checkout's address is whatever the payer typed, so check-config refuses the pair."""
    stripe = {
        "type": "stripe",
        "secret_key": "sk_test_0123456789abcdefghij",
        "webhook_secret": "whsec_0123456789abcdefghij",
        "price": "price_1",
        "product": "gold",
    }
    with pytest.raises(ConfigError) as caught:
        make_settings(
            {"news": site_table("https://v.example.com", identity="pay", login_mode="user")},
            identity={"pay": stripe},
            store={"database_url": "sqlite:///:memory:"},
        )
    assert any(
        p.startswith("sites.news.identity: [identity.pay] is a stripe checkout")
        for p in caught.value.problems
    ), caught.value.problems
