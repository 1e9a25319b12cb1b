"""The security findings that are not about sessions: lockouts and their audit trail, bad
input, page headers, unpublished videos, 23 refusing the gateway, diagnostics and secrets.
Each test says the attack (or the operator's trouble) it replays."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from flask.testing import FlaskClient

from gateway import create_app
from gateway.devsite.catalog import DEMO_SUPER
from tests.formclient import FormClient
from tests.helpers import Devsite, free_port, gateway_cli, make_settings, records_of, site_table
from tests.sso_world import OFFICE_SIZE, TEAM_PASSWORD, World

# ---------------------------------------------------------------- lockouts


def attempt(
    world: World, ip: str, email: str, password: str, browser: FormClient | None = None
) -> requests.Response:
    browser = browser or FormClient()
    headers = {"X-Forwarded-For": ip}  # the test client is the trusted proxy (127.0.0.1)
    page = browser.get(f"{world.gateway}/sso/team/login?return_url=/", headers=headers, timeout=15)
    data = {"email": email, "password": password}
    from tests.formclient import forms

    form = forms(page.text)[0]
    return browser.post(
        f"{world.gateway}/sso/team/login",
        data={**form["fields"], **data},
        headers=headers,
        allow_redirects=False,
        timeout=15,
    )


def test_a_stranger_hammering_from_one_address_cannot_lock_the_owner_out(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Attack: guess ada's password from one address until the account locks, so that ada
    herself cannot sign in from her own address."""
    world.reset()
    caplog.set_level(logging.INFO, logger="gateway.audit")
    statuses = [
        attempt(world, "203.0.113.9", "ada@example.com", f"guess-{i}").status_code
        for i in range(12)
    ]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    owner = attempt(world, "198.51.100.7", "ada@example.com", TEAM_PASSWORD)
    assert owner.status_code == 302 and "redeem-token" in owner.headers["Location"]
    failed = [r.__dict__ for r in caplog.records if r.getMessage() == "sign_in_failed"]
    assert len(failed) == 5
    line = failed[0]
    assert line["site"] == "team" and line["provider"] == "team"
    assert line["account"] == "ada@example.com" and line["reason"] == "wrong_password"
    assert line["client_ip"] == "203.0.113.9"
    locked = [r.__dict__ for r in caplog.records if r.getMessage() == "sign_in_locked"]
    assert len(locked) == 7 and locked[0]["reason"] == "account_and_address"
    assert "guess-" not in caplog.text and TEAM_PASSWORD not in caplog.text


def test_an_office_behind_one_address_signs_in_while_a_stranger_is_locked_out(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Field report: 40 colleagues signing in from one NAT address got 20 successes and 20 x
    429, and the owner of an account a stranger was hammering could not get in either. Only
    failures count: the whole office gets in (eight at a time), the stranger gets 429s."""
    world.reset()
    caplog.set_level(logging.INFO, logger="gateway.audit")
    office, stranger = "198.51.100.40", "203.0.113.40"
    hammered = [attempt(world, stranger, "ada@example.com", f"x-{i}").status_code for i in range(8)]
    assert hammered == [401] * 5 + [429] * 3
    colleagues = [f"colleague{i:02d}@example.com" for i in range(OFFICE_SIZE)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        signed_in = list(
            pool.map(lambda email: attempt(world, office, email, TEAM_PASSWORD), colleagues)
        )
    assert [r.status_code for r in signed_in] == [302] * OFFICE_SIZE
    assert all("redeem-token" in r.headers["Location"] for r in signed_in)
    assert attempt(world, stranger, "ada@example.com", TEAM_PASSWORD).status_code == 429
    for _ in range(3):  # the owner, from the office, as often as she likes
        assert attempt(world, office, "ada@example.com", TEAM_PASSWORD).status_code == 302
    assert attempt(world, office, "colleague00@example.com", "a typo").status_code == 401
    locked = {r.__dict__["client_ip"] for r in caplog.records if r.getMessage() == "sign_in_locked"}
    assert locked == {stranger}


def test_a_stranger_spread_over_one_ipv6_64_counts_as_one_address(world: World) -> None:
    """Red-team round 3: five wrong passwords from each of six addresses in one /64 kept the
    owner's correct sign-in at 429. One customer's /64 is one client."""
    world.reset()
    statuses = [
        attempt(world, f"2001:db8:7:1::{host:x}", "ada@example.com", f"g-{host}-{i}").status_code
        for host in range(1, 7)
        for i in range(5)
    ]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    assert attempt(world, "198.51.100.61", "ada@example.com", TEAM_PASSWORD).status_code == 302


def test_a_browser_that_signed_in_before_passes_a_distributed_lockout(world: World) -> None:
    """Red-team round 3: many addresses together can reach the account-wide limit. The
    owner's own browser (a signed device cookie from an earlier sign-in) still gets in;
    a browser without one is held back like the strangers."""
    world.reset()
    owners = FormClient()
    first = attempt(world, "198.51.100.62", "ada@example.com", TEAM_PASSWORD, owners)
    assert first.status_code == 302
    for host in range(1, 8):  # 7 addresses x 5 failures > the account's 30
        for i in range(5):
            attempt(world, f"203.0.113.{100 + host}", "ada@example.com", f"d-{host}-{i}")
    fresh = attempt(world, "198.51.100.63", "ada@example.com", TEAM_PASSWORD)
    assert fresh.status_code == 429
    signed_out = FormClient()  # the same browser after signing out: its device cookie only
    device = next(c for c in owners.cookies if c.name == "gw_device")
    signed_out.cookies.set(device.name, device.value, path=device.path)
    again = attempt(world, "198.51.100.63", "ada@example.com", TEAM_PASSWORD, signed_out)
    assert again.status_code == 302
    forged = FormClient()
    forged.cookies.set("gw_device", "W10.forged.sig", path="/sso/")
    assert (
        attempt(world, "198.51.100.64", "ada@example.com", TEAM_PASSWORD, forged).status_code == 429
    )


def test_one_address_trying_many_accounts_is_slowed_down(world: World) -> None:
    world.reset()
    statuses = [
        attempt(world, "203.0.113.10", f"user{i}@example.com", "nope").status_code
        for i in range(22)
    ]
    assert statuses[:20] == [401] * 20 and statuses[20:] == [429, 429]
    assert attempt(world, "203.0.113.11", "ada@example.com", TEAM_PASSWORD).status_code == 302


def test_failed_sign_ins_are_audited_with_the_request_id(world: World) -> None:
    world.reset()
    response = attempt(world, "203.0.113.12", "nobody@nowhere.example", "x")
    assert response.status_code == 401
    request_id = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)


def test_an_empty_password_is_refused_before_it_is_checked(world: World) -> None:
    world.reset()
    response = attempt(world, "203.0.113.13", "ada@example.com", "")
    assert response.status_code == 400 and "Enter your e-mail and password" in response.text


# ---------------------------------------------------------------- bad input is a 4xx


# Superscript two, Arabic-Indic digits, fullwidth digits, a zero-width space, spaces.
UNICODE_DIGITS = ["\u00b2", "\u0661\u0662\u0663", "\uff11\uff12\uff13", "1\u200b2", " 12", "12 "]


@pytest.mark.parametrize("raw", UNICODE_DIGITS)
def test_unicode_digits_are_not_photo_ids(client: FlaskClient, devsite: Devsite, raw: str) -> None:
    """Attack: str.isdigit() says yes to "²" and "١٢٣", and int() then raises (a 500)."""
    ping = client.post(f"/pingback/demo?type=photo&photo_id={quote(raw)}")
    assert ping.status_code == 400 and ping.json["error"]["code"] == "invalid_photo_id"
    for path in (f"/embed/demo/{quote(raw)}", f"/download/demo/{quote(raw)}/video_hd"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 400, path
    player = client.get(f"/protection/demo?callback=cb&object_type=photo&object_id={quote(raw)}")
    assert player.status_code == 200 and "Only videos" in player.get_data(as_text=True)
    assert devsite.calls() == []


def test_unicode_digits_in_the_mint_api_with_a_key(keyed: Any) -> None:
    client, headers = keyed
    for raw in UNICODE_DIGITS:
        response = client.post(
            "/api/v1/sites/demo/tokens", json={"photo_ids": [raw]}, headers=headers
        )
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_photo_id"


@pytest.fixture()
def keyed(devsite: Devsite) -> tuple[FlaskClient, dict[str, str]]:
    import hashlib

    settings = make_settings(
        {"demo": site_table(devsite.url)},
        api_keys={
            "cms": {"key_sha256": hashlib.sha256(b"cms-key-0123").hexdigest(), "sites": ["demo"]}
        },
    )
    return create_app(settings).test_client(), {"Authorization": "Bearer cms-key-0123"}


def test_deeply_nested_json_is_a_400(keyed: Any) -> None:
    """Attack: 5,000 nested arrays (10 KB) exhaust the JSON parser's stack."""
    client, headers = keyed
    body = "[" * 5000 + "]" * 5000
    response = client.post(
        "/api/v1/sites/demo/tokens",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_json"


def test_double_slashes_never_redirect_by_the_host_header(client: FlaskClient) -> None:
    """Attack: GET /sso//demo/login with Host: evil.example; a merged-slashes redirect would
    send the visitor to http://evil.example/..."""
    for path in ("/sso//demo/login", "/embed//demo/1001", "/api/v1/sites//demo/tokens"):
        response = client.get(path, headers={"Host": "evil.example"})
        assert response.status_code == 404, path
        assert "Location" not in response.headers


def test_no_visitor_input_makes_a_500(client: FlaskClient) -> None:
    hostile = [
        "/sso/demo/login?return_url=%FF%FE",
        "/sso/demo/login?return_url=" + "a" * 5000,
        "/sso/demo/login?next=/embed/demo/%C2%B2",
        "/sso/demo/logout?return_url=%00",
        "/sso/oidc/nope/callback",
        "/sso/x/y/z",
        "/sso/signed-out?state=" + "x" * 3000,
        "/protection/demo?callback=cb&object_id=" + "9" * 400,
        "/embed/demo/" + "9" * 400,
        "/download/demo/1001/" + "A" * 100,
        "/webhooks/unknown",
    ]
    for path in hostile:
        response = client.get(path, headers={"Cookie": "gw_session=" + "x" * 5000})
        assert response.status_code < 500, path


# ---------------------------------------------------------------- pages and metrics


def test_pages_forbid_framing_and_inline_code(client: FlaskClient) -> None:
    """Attack: frame the sign-in form (clickjacking), or inject markup through a parameter."""
    app_settings = make_settings(
        {"demo": site_table("http://127.0.0.1:9", identity=["a", "b"])},
        identity={"a": {"type": "header"}, "b": {"type": "header"}},
    )
    pages = create_app(app_settings).test_client()
    for path in ("/", "/sso/demo/login", "/sso/demo/logout", "/sso/signed-out", "/nope"):
        response = pages.get(path, headers={"Accept": "text/html"})
        assert response.mimetype == "text/html", path
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "script-src" not in csp and "unsafe-inline" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "<style" not in response.get_data(as_text=True), path
    assert "/metrics" not in pages.get("/").get_data(as_text=True)
    css = pages.get("/static/gateway.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_metrics_can_require_a_bearer_token(devsite: Devsite) -> None:
    settings = make_settings(
        {"demo": site_table(devsite.url)}, gateway={"metrics_token": "scrape-me-0123456789"}
    )
    client = create_app(settings).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
    assert ok.status_code == 200 and b"gateway_http_requests_total" in ok.data


# ---------------------------------------------------------------- unpublished videos


def test_unpublished_videos_stay_unpublished_for_visitors(world: World) -> None:
    """Attack: a signed-in visitor walks photo ids to find drafts (1003 is unpublished)."""
    world.reset()
    browser = FormClient()
    page = browser.get(f"{world.gateway}/sso/team/login?return_url=/", timeout=15)
    browser.submit(page, follow=False, email="ada@example.com", password=TEAM_PASSWORD)
    for path in ("/embed/team/1003", "/download/team/1003/video_hd"):
        response = browser.get(world.gateway + path, allow_redirects=False, timeout=15)
        assert response.status_code == 404, path
        unknown = browser.get(world.gateway + path.replace("1003", "9999"), timeout=15)
        assert unknown.status_code == 404  # the same answer as for an id that does not exist
    answer = browser.get(
        f"{world.gateway}/protection/team",
        params={"callback": "cb", "object_type": "photo", "object_id": "1003"},
        headers={"Referer": world.devsite.url + "/"},
        timeout=15,
    )
    assert "protected_token" not in answer.text and '"error"' in answer.text


def test_a_site_may_show_unpublished_videos_and_backends_always_mint_them(
    devsite: Devsite,
) -> None:
    import hashlib

    settings = make_settings(
        {
            "drafts": site_table(devsite.url, identity="proxy", visitor_unpublished=True),
            "closed": site_table(devsite.url, identity="proxy"),
        },
        gateway={"trusted_proxies": ["127.0.0.1/32"]},
        identity={"proxy": {"type": "header"}},
        api_keys={
            "cms": {"key_sha256": hashlib.sha256(b"k-0123456").hexdigest(), "sites": ["closed"]}
        },
    )
    client = create_app(settings).test_client()
    who = {"X-Forwarded-Email": "ada@example.com"}
    assert client.get("/embed/drafts/1003", headers=who).status_code == 302
    assert client.get("/embed/closed/1003", headers=who).status_code == 404
    minted = client.post(
        "/api/v1/sites/closed/tokens",
        json={"photo_ids": [1003]},
        headers={"Authorization": "Bearer k-0123456"},
    )
    assert minted.status_code == 200 and "token" in minted.json["tokens"][0]


# ---------------------------------------------------------------- 23 refusing the gateway


def test_23_refusing_the_gateways_credentials_is_a_502_not_a_200(devsite: Devsite) -> None:
    """Operator trouble: a rotated secret made every mint "succeed" with per-item errors."""
    import hashlib

    key, _, token, token_secret = DEMO_SUPER
    settings = make_settings(
        {"demo": site_table(devsite.url, creds=(key, "wrong-secret", token, token_secret))},
        api_keys={
            "cms": {"key_sha256": hashlib.sha256(b"k-0123456").hexdigest(), "sites": ["demo"]}
        },
    )
    client = create_app(settings).test_client()
    response = client.post(
        "/api/v1/sites/demo/tokens",
        json={"photo_ids": [1001, 1002]},
        headers={"Authorization": "Bearer k-0123456"},
    )
    assert response.status_code == 502
    error = response.json["error"]
    assert error["code"] == "upstream_rejected" and error["upstream_code"] == "invalid_signature"
    assert error["site"] == "demo" and error["api_method"] == "photo/list"


# ---------------------------------------------------------------- diagnostics


def _upstream_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.__dict__ for r in caplog.records if r.getMessage() == "upstream failure"]


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("http://127.0.0.1:{closed}", "refused"),
        ("https://does-not-exist.invalid", "dns"),
        ("https://127.0.0.1:{devsite}", "tls"),
    ],
)
def test_an_upstream_failure_says_site_method_url_and_cause(
    devsite: Devsite, caplog: pytest.LogCaptureFixture, url: str, cause: str
) -> None:
    port = devsite.url.rsplit(":", 1)[1]
    site_url = url.format(closed=free_port(), devsite=port)
    settings = make_settings({"far": site_table(site_url)})
    client = create_app(settings).test_client()
    with records_of("gateway.upstream") as seen:
        ready = client.get("/readyz?strict=1")
    assert ready.status_code == 503
    # Only this app's site: an earlier test's background sync may log in the same moment.
    failures = [r.__dict__ for r in seen if r.getMessage() == "upstream failure"]
    (line, *_) = [f for f in failures if f["site"] == "far"]
    assert line["api_method"] == "photo/list"
    assert line["url"] == f"{site_url}/api/2/photo/list" and "?" not in line["url"]
    assert line["cause"] == cause


def test_http_errors_and_timeouts_are_classified(
    devsite: Devsite, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    devsite.mode("down")
    assert client.get("/readyz?strict=1").status_code == 503
    assert "http_503" in {line["cause"] for line in _upstream_lines(caplog)}
    failed = [r.__dict__ for r in caplog.records if r.getMessage() == "readiness check failed"]
    assert failed and failed[0]["site"] == "demo" and failed[0]["code"] == "upstream_unavailable"


def test_the_upstream_error_label_is_bounded(devsite: Devsite, client: FlaskClient) -> None:
    """A misbehaving site inventing error codes must not grow the metrics without bound."""
    devsite.mode("error")  # answers {"status": "error", "code": "internal_error"}
    client.get("/readyz")
    text = client.get("/metrics").get_data(as_text=True)
    lines = [x for x in text.splitlines() if x.startswith("gateway_upstream_calls_total{")]
    assert any('outcome="other"' in x and 'site="demo"' in x for x in lines)
    assert not any("internal_error" in x for x in lines)


# ---------------------------------------------------------------- secrets stay secret

SECRETS = {
    "secret_key": "SECRET-gateway-key-7f3a91c2-0123456789",
    "consumer_secret": "SECRET-consumer-b81d",
    "access_token_secret": "SECRET-access-44e0",
    "client_secret": "SECRET-oidc-client-9a2b",
    "stripe_key": "sk_test_SECRETstripe5c7d",
    "webhook": "whsec_SECRETwebhook1e2f",
    "smtp": "SECRET-smtp-pass-8c8c",
    "redis": "SECRETredispw3b3b",
    "database": "SECRETdbpw6d6d",
    "metrics": "SECRET-metrics-2a2a",
    "paywall": "SECRET-paywall-hs256-0d0d",
}


def secret_config(devsite_url: str, port: int, tmp: Path, database_url: str = "") -> str:
    s = SECRETS
    database_url = database_url or f"sqlite:///{tmp}/ent.db"
    return f"""
[gateway]
public_url = "http://127.0.0.1:{port}"
secret_key = "{s["secret_key"]}"
metrics_token = "{s["metrics"]}"

[store]
url = "redis://:{s["redis"]}@127.0.0.1:{free_port()}/0"
database_url = "{database_url}"

[sites.demo]
url = "{devsite_url}"
consumer_key = "demo-super-consumer"
consumer_secret = "{s["consumer_secret"]}"
access_token = "demo-super-access"
access_token_secret = "{s["access_token_secret"]}"
identity = ["corp", "shop", "mail", "wall"]
require_entitlement = "gold"

[identity.corp]
type = "oidc"
issuer = "http://127.0.0.1:9"
client_id = "gw"
client_secret = "{s["client_secret"]}"

[identity.shop]
type = "stripe"
secret_key = "{s["stripe_key"]}"
webhook_secret = "{s["webhook"]}"
price = "price_1"
product = "gold"

[identity.mail]
type = "email"
smtp_host = "127.0.0.1"
smtp_password = "{s["smtp"]}"
sender = "v@example.com"

[identity.wall]
type = "jwt"
issuer = "i"
audience = "a"
secret = "{s["paywall"]}"
"""


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return gateway_cli("check-config", str(path))


def assert_no_secret(text: str, where: str) -> None:
    for name, value in SECRETS.items():
        assert value not in text, f"{name} leaked in {where}"


def test_secrets_never_show(devsite: Devsite, tmp_path: Path) -> None:
    """Operator trouble: a secret in a repr, an error message or a log line ends up in a
    ticket, a screenshot or a log aggregator."""
    from gateway.loader import load_settings

    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(secret_config(devsite.url, port, tmp_path))
    settings = load_settings(config, env={})
    assert_no_secret(repr(settings), "repr(settings)")
    in_production = tmp_path / "pg.toml"
    pg_url = f"postgresql://gw:{SECRETS['database']}@db.internal/gw"
    in_production.write_text(secret_config(devsite.url, port, tmp_path, pg_url))
    assert_no_secret(repr(load_settings(in_production, env={})), "repr(settings) with postgres")
    for site in settings.sites.values():
        assert_no_secret(repr(site), "repr(site)")
    for ident in settings.identities.values():
        assert_no_secret(repr(ident), "repr(identity)")
    checked = check_config(config)
    assert checked.returncode == 0, checked.stderr
    assert_no_secret(checked.stdout + checked.stderr, "check-config")
    broken = tmp_path / "broken.toml"
    broken.write_text(
        secret_config(devsite.url, port, tmp_path).replace(
            'secret_key = "SECRET-gateway-key-7f3a91c2-0123456789"', 'secret_key = "SECRET-short"'
        )
    )
    bad = check_config(broken)
    assert bad.returncode == 2 and "gateway.secret_key" in bad.stderr
    assert "SECRET-short" not in bad.stderr
    client = create_app(settings).test_client()
    devsite.mode("down")
    for path in ("/sso/demo/login?provider=corp", "/readyz", "/embed/demo/1001"):
        page = client.get(path, headers={"Accept": "text/html"})
        assert_no_secret(page.get_data(as_text=True), path)
        api = client.get(path, headers={"Accept": "application/json"})
        assert_no_secret(api.get_data(as_text=True), path)


def test_the_served_gateway_logs_no_secret(devsite: Devsite, tmp_path: Path) -> None:
    from tests.helpers import ServedGateway

    served = ServedGateway(secret_config(devsite.url, 0, tmp_path), tmp_path)
    try:
        requests.get(served.url + "/readyz", timeout=15)
        requests.get(served.url + "/sso/demo/login?provider=corp", timeout=15)
        requests.get(
            served.url + "/metrics",
            headers={"Authorization": f"Bearer {SECRETS['metrics']}"},
            timeout=15,
        )
    finally:
        served.stop()
    output = served.output()
    assert_no_secret(output, "the server's log")
    for line in output.splitlines():
        try:
            json.loads(line)  # every line is JSON, the server's own included
        except ValueError:
            raise AssertionError(f"not a JSON line: {output}") from None
