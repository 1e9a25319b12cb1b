"""The operator console: who gets in, its own session, CSRF, the pages and their numbers."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway import create_app
from gateway.passwords import hash_password
from gateway.telemetry import ALL, Telemetry, percentile_ms
from tests.helpers import TEST_SECRET, Devsite, gateway_cli, make_settings, records_of, site_table

PASSWORD = "console-pass-123"
KEY = "admin-test-key-0123456789"


def _settings(devsite: Devsite, **admin: Any) -> Any:
    users = [
        {"email": e, "password_hash": hash_password(PASSWORD), "groups": g}
        for e, g in (
            ("ops@example.com", []),
            ("viewer@example.com", []),
            ("sre@example.com", ["sre"]),
        )
    ]
    return make_settings(
        {
            "demo": site_table(
                devsite.url,
                identity="team",
                allow_email_domains=["example.com"],
                rules=[{"album_id": 9001, "allow_groups": ["board"]}],
            ),
            "paid": site_table(devsite.url, identity="team", require_entitlement="gold"),
        },
        identity={
            "team": {"type": "static", "users": users},
            "other": {"type": "static", "users": users},
        },
        store={"database_url": "sqlite://"},
        api_keys={
            "cms": {"key_sha256": hashlib.sha256(KEY.encode()).hexdigest(), "sites": ["demo"]}
        },
        admin={
            "identity": "team",
            "allow_emails": ["ops@example.com"],
            "allow_groups": ["sre"],
            **admin,
        },
    )


@pytest.fixture()
def console(devsite: Devsite) -> FlaskClient:
    return create_app(_settings(devsite)).test_client()


def sign_in(client: FlaskClient, email: str = "ops@example.com", password: str = PASSWORD) -> Any:
    form = client.get("/admin", follow_redirects=True)
    assert form.status_code == 200 and 'name="password"' in form.get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.get_data(as_text=True))
    assert csrf
    return client.post(
        "/sso/_admin/login",
        data={"csrf": csrf.group(1), "provider": "team", "email": email, "password": password,
              "return_url": "/admin", "next": ""},
    )  # fmt: skip


def test_no_admin_section_no_console(devsite: Devsite) -> None:
    plain = make_settings({"demo": site_table(devsite.url)})
    client = create_app(plain).test_client()
    assert client.get("/admin").status_code == 404
    assert client.get("/admin/config").status_code == 404
    assert client.get("/sso/_admin/login").status_code == 404


def test_allowed_operators_get_in_by_email_or_group(console: FlaskClient, devsite: Devsite) -> None:
    assert console.get("/admin").status_code == 303  # to the sign-in
    done = sign_in(console)
    assert done.status_code == 303 and done.headers["Location"] == "/admin"
    cookie = done.headers["Set-Cookie"]
    assert "Path=/admin" in cookie and "SameSite=Strict" in cookie and "HttpOnly" in cookie
    page = console.get("/admin")
    assert page.status_code == 200 and "Overview" in page.get_data(as_text=True)
    sre = create_app(_settings(devsite)).test_client()
    assert sign_in(sre, "sre@example.com").status_code == 303
    assert sre.get("/admin/config").status_code == 200


def test_others_are_refused_and_audited(
    console: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    refused = sign_in(console, "viewer@example.com")
    assert refused.status_code == 403
    assert console.get("/admin").status_code == 303
    wrong = sign_in(console, "ops@example.com", "nope-nope-nope")
    assert wrong.status_code == 401 and "gw_admin" not in wrong.headers.get("Set-Cookie", "")


def test_a_visitor_session_of_another_provider_is_not_a_console_session(
    console: FlaskClient,
) -> None:
    """A site session (any provider) never opens /admin by itself; and a visitor cookie is
    not the console's cookie."""
    form = console.get("/sso/demo/login?return_url=/").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    visitor = console.post(
        "/sso/demo/login",
        data={"csrf": csrf.group(1), "provider": "team", "email": "viewer@example.com",
              "password": PASSWORD, "return_url": "/", "next": ""},
    )  # fmt: skip
    assert visitor.status_code == 302
    assert console.get("/admin").status_code == 303


def test_sign_out_needs_the_token_and_revokes_the_cookie(console: FlaskClient) -> None:
    sign_in(console)
    cookie = console.get_cookie("gw_admin", path="/admin")
    assert cookie is not None
    page = console.get("/admin").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    assert console.post("/admin/logout", data={"csrf": "forged"}).status_code == 400
    assert console.get("/admin").status_code == 200  # still in
    assert console.post("/admin/logout", data={"csrf": csrf.group(1)}).status_code == 303
    console.set_cookie("gw_admin", cookie.value, path="/admin")  # a copy taken before
    assert console.get("/admin").status_code == 303


def test_removing_an_operator_from_the_config_locks_them_out(devsite: Devsite) -> None:
    first = create_app(_settings(devsite)).test_client()
    sign_in(first)
    cookie = first.get_cookie("gw_admin", path="/admin")
    assert cookie is not None
    later = create_app(_settings(devsite, allow_emails=["someone@example.com"])).test_client()
    later.set_cookie("gw_admin", cookie.value, path="/admin")
    assert later.get("/admin").status_code == 303


def test_the_configuration_page_masks_every_secret(console: FlaskClient) -> None:
    sign_in(console)
    text = console.get("/admin/config").get_data(as_text=True)
    assert "consumer_secret = &#34;********&#34;" in text or 'consumer_secret = "********"' in text
    for secret in ("demo-super-consumer-secret", "demo-super-access-secret", "scrypt$"):
        assert secret not in text
    assert "[sites.demo]" in text and "[admin]" in text


def test_the_configuration_page_is_toml_that_parses_back(console: FlaskClient) -> None:
    """Review: the key hash was a Python bytes repr (b'\xfac;M...') and rules were JSON."""
    import html
    import tomllib

    sign_in(console)
    page = console.get("/admin/config").get_data(as_text=True)
    shown = re.search(r"<pre[^>]*>(.*?)</pre>", page, re.S)
    assert shown is not None
    parsed = tomllib.loads(html.unescape(shown.group(1)))
    digest = parsed["api_keys"]["cms"]["key_sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert parsed["sites"]["demo"]["consumer_secret"] == "********"
    assert "demo-super-access-secret" not in page


def test_traffic_shows_in_the_overview_and_the_audit_page(
    console: FlaskClient, devsite: Devsite
) -> None:
    sign_in(console)
    for _ in range(3):
        minted = console.post(
            "/api/v1/sites/demo/tokens",
            json={"photo_ids": [1001, 1002]},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert minted.status_code == 200
    overview = console.get("/admin").get_data(as_text=True)
    assert overview.count('<svg class="plot"') >= 6 * 3  # all sites, demo, paid
    totals = re.search(r"Tokens minted</dt><dd>(\d+)</dd>", overview)
    assert totals and int(totals.group(1)) == 6
    assert "<polyline" in overview
    events = console.get("/admin/audit?site=demo&event=tokens_minted").get_data(as_text=True)
    assert events.count("<td>tokens_minted</td>") == 3 and "api_key: cms" in events
    assert "admin_signed_in" in console.get("/admin/audit?event=admin").get_data(as_text=True)


def test_why_explains_the_policy(console: FlaskClient) -> None:
    sign_in(console)
    outsider = console.get("/admin/why?email=eve@other.org&site=demo").get_data(as_text=True)
    assert "domain_not_allowed" in outsider and "refused" in outsider
    member = console.get("/admin/why?email=viewer@example.com&site=demo").get_data(as_text=True)
    assert "allowed" in member
    paid = console.get("/admin/why?email=viewer@example.com&site=paid").get_data(as_text=True)
    assert "entitlement_required" in paid and "holds it: <strong>none</strong>" in paid
    nothing = console.get("/admin/why?email=nope&site=demo").get_data(as_text=True)
    assert "Give an e-mail address and a site" in nothing


def test_why_explains_the_access_rules_for_one_video(console: FlaskClient) -> None:
    sign_in(console)
    board = console.get("/admin/why?email=viewer@example.com&site=demo&photo_id=1005")
    text = board.get_data(as_text=True)
    assert "Video 1005" in text and "album 9001" in text
    assert "refused" in text and "group_not_allowed" in text
    open_video = console.get("/admin/why?email=viewer@example.com&site=demo&photo_id=1001")
    assert "Access rules covering it: none" in open_video.get_data(as_text=True)
    unknown = console.get("/admin/why?email=viewer@example.com&site=demo&photo_id=999999")
    assert "the site has no such video" in unknown.get_data(as_text=True)
    bad = console.get("/admin/why?email=viewer@example.com&site=demo&photo_id=12ab")
    assert bad.status_code == 200 and 'aria-invalid="true"' in bad.get_data(as_text=True)


def test_console_pages_are_not_cached_and_strict(console: FlaskClient) -> None:
    sign_in(console)
    page = console.get("/admin/why")
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "<script" not in page.get_data(as_text=True)


# ---------------------------------------------------------------- telemetry


def test_telemetry_counts_per_minute_per_site_and_in_total() -> None:
    from gateway.store import MemoryStore

    now = [1_800_000_000.0]
    telemetry = Telemetry(MemoryStore(), clock=lambda: now[0])
    telemetry.count("demo", "granted")
    telemetry.audited("tokens_minted", {"site": "demo", "photo_ids": [1, 2, 3]})
    now[0] += 120
    telemetry.audited("sso_denied", {"site": "other", "email": "x@example.com"})
    for ms in (3, 40, 40, 40, 900):
        telemetry.observe_ms("demo", "upstream_ms", ms)
    demo = telemetry.series("demo", minutes=3)
    assert demo[0] == {"granted": 1, "tokens": 3} and demo[1] == {}
    assert percentile_ms(demo[2], "upstream_ms", 0.5) == 50
    assert percentile_ms(demo[2], "upstream_ms", 0.99) == 1000
    total = telemetry.series(ALL, minutes=3)
    assert total[0]["tokens"] == 3 and total[2]["refused"] == 1
    assert [e["event"] for e in telemetry.recent()] == ["sso_denied", "tokens_minted"]


def test_telemetry_is_shared_through_redis(redis_url: str) -> None:
    import redis as redis_lib

    from gateway.store import RedisStore

    url = redis_url.rsplit("/", 1)[0] + "/9"
    redis_lib.Redis.from_url(url).flushdb()
    a, b = Telemetry(RedisStore(url)), Telemetry(RedisStore(url))
    a.count("demo", "granted", 2)
    b.count("demo", "granted", 3)
    a.flush()
    b.flush()
    assert a.series("demo", minutes=1)[-1]["granted"] == 5


# ---------------------------------------------------------------- console sessions (red team 3)


def _operator_cookie(client: FlaskClient, **fields: Any) -> None:
    """A console cookie as a sign-in through an IdP that sends sub/sid would have written."""
    from gateway.identity.base import Identity
    from gateway.sessions import SignedSession

    who = Identity(
        "ops@example.com", "Ops", provider="team", subject="sub-ops", idp_session="sid-ops"
    )
    issued = int(fields.pop("issued", time.time()))
    who = dataclasses.replace(who, **{k: v for k, v in fields.items() if k != "id"})
    session = SignedSession(
        str(fields.get("id", "op-1")) + "-console-session-id", who, issued, issued
    )
    sessions = client.application.extensions["gateway.runtime"].console_sessions
    client.set_cookie("gw_admin", sessions.dump(session), path="/admin")


def test_an_idp_logout_ends_the_console_session_too(console: FlaskClient) -> None:
    """Red-team round 3: back-channel logout and SAML SLO revoked visitor sessions only, and
    the console went on for up to 8 h on its cookie's snapshot."""
    _operator_cookie(console)
    assert console.get("/admin").status_code == 200
    services = console.application.extensions["gateway.runtime"]
    services.sessions.revoke_at_idp("team", idp_session="sid-ops")  # what the IdP's logout does
    assert console.get("/admin").status_code in (302, 303)
    _operator_cookie(console, id="op-2", idp_session="sid-2")  # a new IdP session
    assert console.get("/admin").status_code == 200
    services.sessions.revoke_at_idp("team", subject="sub-ops")
    assert console.get("/admin").status_code in (302, 303)


def test_console_sessions_end_when_idle_and_after_eight_hours(
    console: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sign_in(console).status_code == 303
    assert console.get("/admin").status_code == 200
    start = time.time()
    monkeypatch.setattr(time, "time", lambda: start + 14 * 60)
    assert console.get("/admin").status_code == 200  # active: the idle window slides on
    monkeypatch.setattr(time, "time", lambda: start + 28 * 60)
    assert console.get("/admin").status_code == 200
    monkeypatch.setattr(time, "time", lambda: start + 44 * 60)  # 16 idle minutes
    assert console.get("/admin").status_code in (302, 303)
    monkeypatch.setattr(time, "time", lambda: start)
    _operator_cookie(console, issued=int(start) - 8 * 3600 - 1)  # fresh cookie, old sign-in
    assert console.get("/admin").status_code in (302, 303)


def test_a_console_sign_in_always_goes_through_the_idp(console: FlaskClient) -> None:
    """A visitor session's groups are a snapshot: the console never reuses one."""
    form = console.get("/sso/_admin/login")
    assert form.status_code == 200 and 'name="password"' in form.get_data(as_text=True)


# ---------------------------------------------------------------- sessions and lockouts


def _visitor(app: Any, devsite: Devsite, agent: str, password: str = PASSWORD) -> FlaskClient:
    """viewer@example.com signed in to demo through the password form, in its own browser."""
    browser = app.test_client()
    form = browser.get(f"/sso/demo/login?return_url={devsite.url}/", headers={"User-Agent": agent})
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.get_data(as_text=True))
    assert csrf
    answer = browser.post(
        "/sso/demo/login",
        data={"csrf": csrf.group(1), "provider": "team", "email": "viewer@example.com",
              "password": password, "return_url": f"{devsite.url}/", "next": ""},
        headers={"User-Agent": agent},
    )  # fmt: skip
    assert answer.status_code in (302, 401, 429), answer.status_code
    return browser


def _csrf(page: Any) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True))
    assert found
    return found.group(1)


def test_the_console_signs_a_person_out_everywhere(console: FlaskClient, devsite: Devsite) -> None:
    app = console.application
    devices = [_visitor(app, devsite, agent) for agent in ("Laptop", "Phone", "Tablet")]
    for device in devices:
        assert device.get("/embed/demo/1001").status_code == 302
    sign_in(console)
    listed = console.get("/admin/sessions?email=viewer@example.com")
    text = listed.get_data(as_text=True)
    assert listed.status_code == 200 and all(a in text for a in ("Laptop", "Phone", "Tablet"))
    assert "ago (" in text and "demo" in text  # when, in words, and where
    refused = console.post("/admin/sessions/revoke", data={"email": "viewer@example.com"})
    assert refused.status_code == 400  # no form token
    assert devices[0].get("/embed/demo/1001").status_code == 302
    with records_of("gateway.audit") as audited:
        done = console.post(
            "/admin/sessions/revoke", data={"csrf": _csrf(listed), "email": "viewer@example.com"}
        )
    assert done.status_code == 303
    for device in devices:
        assert device.get("/embed/demo/1001").status_code in (302, 303)
        assert "/sso/demo/login" in device.get("/embed/demo/1001").headers["Location"]
    (line,) = [r.__dict__ for r in audited if r.getMessage() == "sessions_revoked"]
    assert line["operator"] == "ops@example.com" and line["listed"] == 3
    assert "Laptop" not in console.get("/admin/sessions?email=viewer@example.com").get_data(
        as_text=True
    )
    again = _visitor(app, devsite, "Laptop")  # a new sign-in after it works
    assert again.get("/embed/demo/1001").status_code == 302


def test_the_console_lists_and_lifts_a_lockout(console: FlaskClient, devsite: Devsite) -> None:
    app = console.application
    for _ in range(16):  # locked after 5; hammering the lock lists it once, not ten times
        _visitor(app, devsite, "Guesser", password="not the password")
    noted = app.extensions["gateway.runtime"].store.newest("lockouts:recent", 500)
    assert len(noted) == 1, noted
    sign_in(console)
    page = console.get("/admin/lockouts")
    text = page.get_data(as_text=True)
    assert "viewer@example.com" in text and "this account from this address" in text
    assert re.search(r"<td>\d+ \(limit 5\)</td>", text), text  # the failures it counted
    limit = re.search(r'name="limit" value="([^"]+)"', text)
    assert limit is not None
    assert console.post("/admin/lockouts/lift", data={"limit": limit.group(1)}).status_code == 400
    forged = console.post("/admin/lockouts/lift", data={"csrf": _csrf(page), "limit": "rl-x:1"})
    assert forged.status_code == 404  # only a listed lockout: never an arbitrary store key
    with records_of("gateway.audit") as audited:
        lifted = console.post(
            "/admin/lockouts/lift",
            data={"csrf": _csrf(page), "limit": html.unescape(limit.group(1))},
        )
    assert lifted.status_code == 303
    assert [r for r in audited if r.getMessage() == "lockout_lifted"]
    assert "viewer@example.com" not in console.get("/admin/lockouts").get_data(as_text=True)
    browser = _visitor(app, devsite, "Owner")  # the right password goes through at once
    opened = browser.get("/embed/demo/1001")
    assert opened.status_code == 302 and "/sso/demo/login" not in opened.headers["Location"]


def test_the_command_line_signs_a_person_out_everywhere(
    devsite: Devsite, redis_url: str, tmp_path: Any
) -> None:
    """``gateway sessions revoke --email E`` against the Redis store the gateway uses."""

    import redis as redis_lib

    url = redis_url.rsplit("/", 1)[0] + "/11"
    redis_lib.Redis.from_url(url).flushdb()
    app = create_app(_with_store(devsite, url))
    device = _visitor(app, devsite, "Laptop")
    assert device.get("/embed/demo/1001").status_code == 302
    config = tmp_path / "gateway.toml"
    config.write_text(_config_text(devsite, url))
    done = gateway_cli(
        "sessions", "revoke", "--email", "viewer@example.com", "--config", str(config)
    )
    assert done.returncode == 0, done.stderr
    assert "signed out everywhere (1 listed" in done.stdout
    assert "/sso/demo/login" in device.get("/embed/demo/1001").headers["Location"]
    memory = tmp_path / "memory.toml"
    memory.write_text(_config_text(devsite, ""))
    refused = gateway_cli("sessions", "revoke", "--email", "a@example.com", "--config", str(memory))
    assert refused.returncode == 2 and "/admin/sessions" in refused.stderr


def _with_store(devsite: Devsite, url: str) -> Any:
    from pydantic import SecretStr

    settings = _settings(devsite)
    return settings.model_copy(
        update={"store": settings.store.model_copy(update={"url": SecretStr(url)})}
    )


def _config_text(devsite: Devsite, store: str) -> str:
    return f"""
[gateway]
public_url = "http://127.0.0.1:8000"
secret_key = "{TEST_SECRET}"

[store]
url = "{store}"

[sites.demo]
url = "{devsite.url}"
consumer_key = "k"
consumer_secret = "s"
access_token = "t"
access_token_secret = "ts"
"""


def test_why_names_a_missing_account_and_the_missing_group(console: FlaskClient) -> None:
    """Review: stranger@other.org was "allowed" on a site whose static identity has no such
    account, and a refused video never named the group it needs."""
    sign_in(console)
    stranger = console.get("/admin/why?email=stranger@example.com&site=demo")
    text = html.unescape(stranger.get_data(as_text=True))
    assert "no_account" in text and "has no account with this provider" in text
    outsider = html.unescape(
        console.get("/admin/why?email=eve@other.org&site=demo").get_data(as_text=True)
    )
    assert "domain_not_allowed" in outsider and "eve@other.org has no account" in outsider
    board = console.get("/admin/why?email=viewer@example.com&site=demo&photo_id=1005")
    text = html.unescape(board.get_data(as_text=True))
    assert "forbidden_by_rule" in text or "group_not_allowed" in text
    assert "Needs one of the groups: board." in text


def test_why_takes_the_documented_video_parameter(console: FlaskClient) -> None:
    sign_in(console)
    text = html.unescape(
        console.get("/admin/why?email=viewer@example.com&site=demo&video=1005").get_data(
            as_text=True
        )
    )
    assert "Needs one of the groups: board." in text


def test_the_console_speaks_danish_when_asked(console: FlaskClient) -> None:
    sign_in(console)
    da = {"Accept-Language": "da"}
    overview = console.get("/admin", headers=da).get_data(as_text=True)
    assert '<html lang="da">' in overview and "Oversigt" in overview and "Parathed" in overview
    assert "Logins pr. 10 minutter" in overview and "De seneste 24 timer." in overview
    why = console.get("/admin/why?email=eve@other.org&site=demo", headers=da).get_data(as_text=True)
    assert "Politik for eve@other.org på demo" in why and "Kræver en adresse i:" in why
    assert "afvist" in why
    english = console.get("/admin/why?email=eve@other.org&site=demo").get_data(as_text=True)
    assert '<html lang="en">' in english and "Needs an address in:" in english


def test_a_lockout_is_found_by_its_account_however_many_others(
    console: FlaskClient, devsite: Devsite
) -> None:
    """A stranger who locks hundreds of made-up accounts cannot hide the owner's lockout from
    the operator: the console finds it by the account, and lifts it."""
    import time

    from gateway.identity.password_form import LOCKOUTS

    app = console.application
    for _ in range(6):
        _visitor(app, devsite, "Guesser", password="not the password")
    store, now = app.extensions["gateway.runtime"].store, time.time()
    flood = [
        {"limit": f"login-pair:team:x{n}@example.org:203.0.113.{n % 250}", "scope":
         "account_and_address", "provider": "team", "account": f"x{n}@example.org",
         "address": "203.0.113.9", "at": now, "until": now + 60}
        for n in range(600)
    ]  # fmt: skip
    store.append(LOCKOUTS, flood, 500, 600)
    sign_in(console)
    assert "viewer@example.com" not in console.get("/admin/lockouts").get_data(as_text=True)
    page = console.get("/admin/lockouts?account=viewer@example.com")
    text = page.get_data(as_text=True)
    assert "viewer@example.com" in text and "x1@example.org" not in text
    limit = re.search(r'name="limit" value="([^"]+)"', text)
    assert limit is not None
    lifted = console.post(
        "/admin/lockouts/lift",
        data={"csrf": _csrf(page), "limit": html.unescape(limit.group(1)),
              "account": "viewer@example.com"},
    )  # fmt: skip
    assert lifted.status_code == 303
    browser = _visitor(app, devsite, "Owner")  # the right password goes through at once
    opened = browser.get("/embed/demo/1001")
    assert opened.status_code == 302 and "/sso/demo/login" not in opened.headers["Location"]
