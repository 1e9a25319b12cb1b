"""The SSO loop over real HTTP: emulated 23 site -> gateway -> real OIDC provider -> back."""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from gateway.sessions import COOKIE
from tests.formclient import FormClient
from tests.sso_world import TEAM_PASSWORD, World


@pytest.fixture(autouse=True)
def _reset(world: World) -> None:
    world.reset()


def sign_in_at_idp(browser: FormClient, page: requests.Response, login: str) -> requests.Response:
    """Fill the provider's login form, then its consent form; stop before the gateway."""
    assert "/interaction/" in page.url, page.url
    consent = browser.submit(page, login=login, password="any")
    assert "/interaction/" in consent.url, consent.text[:500]
    return browser.submit(consent, follow=False)


def oidc_login(
    world: World, login: str, start: str | None = None, browser: FormClient | None = None
) -> tuple[FormClient, requests.Response]:
    browser = browser or FormClient()
    page = browser.get(start or world.devsite.url + "/", timeout=15)
    back = sign_in_at_idp(browser, page, login)
    final = browser.get(back.headers["Location"], timeout=15) if back.is_redirect else back
    return browser, final


def test_the_whole_loop_with_a_real_provider(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.audit"):
        _, final = oidc_login(world, "alice")
    assert final.status_code == 200, final.text[:300]
    assert "Welcome, Alice Example" in final.text and "alice@example.com" in final.text
    (call,) = world.calls("session/get-token")
    assert call["level"] == "super" and call["params"]["email"] == "alice@example.com"
    assert call["params"]["full_name"] == "Alice Example"
    assert call["params"]["return_url"] == world.devsite.url + "/"
    granted = [r for r in caplog.records if r.getMessage() == "sso_granted"]
    assert granted and granted[0].__dict__["email"] == "alice@example.com"
    assert "access_token" not in caplog.text


def test_a_second_site_needs_no_second_trip_to_the_provider(world: World) -> None:
    browser, _ = oidc_login(world, "alice")
    world.devsite.reset()
    again = browser.get(
        f"{world.gateway}/sso/multi/login?return_url=/video/1001", allow_redirects=False, timeout=15
    )
    assert again.status_code == 302
    assert again.headers["Location"].startswith(world.devsite.url + "/api/session/redeem-token")
    assert len(world.calls("session/get-token")) == 1


def test_denied_domain_is_403_and_never_reaches_23(world: World) -> None:
    _, final = oidc_login(world, "bob")
    assert final.status_code == 403 and "cannot enter" in final.text
    assert world.calls("session/get-token") == []


def test_unverified_email_is_refused(world: World) -> None:
    _, final = oidc_login(world, "eve")
    assert final.status_code == 403 and "verify" in final.text
    assert world.calls("session/get-token") == []


def test_email_domains_compare_case_insensitively(world: World) -> None:
    _, final = oidc_login(world, "carol")
    assert final.status_code == 200 and "Carol Case" in final.text


def test_cancelled_at_the_provider(world: World) -> None:
    browser = FormClient()
    page = browser.get(world.devsite.url + "/", timeout=15)
    cancel = re.search(r'href="([^"]+/abort)"', page.text)
    assert cancel
    final = browser.get(cancel.group(1), timeout=15)
    assert final.status_code == 401 and "cancelled" in final.text.lower()
    assert world.calls("session/get-token") == []


def _callback(world: World, login: str = "alice") -> tuple[FormClient, str]:
    browser = FormClient()
    page = browser.get(world.devsite.url + "/", timeout=15)
    back = browser.follow_until(
        sign_in_at_idp(browser, page, login), f"{world.gateway}/sso/oidc/corp/callback"
    )
    location = back.headers["Location"]
    assert location.startswith(f"{world.gateway}/sso/oidc/corp/callback?")
    return browser, location


def test_replayed_state_is_refused(world: World) -> None:
    browser, callback = _callback(world)
    first = browser.get(callback, allow_redirects=False, timeout=15)
    assert first.status_code == 302
    replay = browser.get(
        callback, allow_redirects=False, timeout=15, headers={"Accept": "application/json"}
    )
    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "state_replayed"
    assert len(world.calls("session/get-token")) == 1


def test_callback_in_another_browser_is_refused(world: World) -> None:
    _, callback = _callback(world)
    stranger = requests.get(
        callback, allow_redirects=False, timeout=15, headers={"Accept": "application/json"}
    )
    assert stranger.status_code == 400 and stranger.json()["error"]["code"] == "invalid_state"
    assert world.calls("session/get-token") == []


def test_tampered_state_cookie_is_refused(world: World) -> None:
    browser, callback = _callback(world)
    for cookie in browser.cookies:
        if cookie.name == "gw_oidc":
            cookie.value = cookie.value[:-4] + (
                "AAAA" if not cookie.value.endswith("AAAA") else "BBBB"
            )
    response = browser.get(callback, allow_redirects=False, timeout=15)
    assert response.status_code == 400
    assert world.calls("session/get-token") == []


def test_tampered_code_is_refused(world: World) -> None:
    browser, callback = _callback(world)
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    forged = f"{world.gateway}{parts.path}?" + urlencode(
        {"code": query["code"][0][:-2] + "xx", "state": query["state"][0], "iss": world.idp.issuer}
    )
    response = browser.get(forged, allow_redirects=False, timeout=15)
    assert response.status_code == 400
    assert world.calls("session/get-token") == []


def test_forged_session_cookie_is_ignored(world: World) -> None:
    browser = FormClient()
    browser.cookies.set(COOKIE, "eyJpIjp7ImVtYWlsIjoibWFsbG9yeUBleGFtcGxlLmNvbSJ9fQ.forged")
    response = browser.get(
        f"{world.gateway}/sso/intranet/login?return_url=/", allow_redirects=False, timeout=15
    )
    assert response.status_code == 302 and response.headers["Location"].startswith(world.idp.issuer)


def test_23_down_is_a_502_page(world: World) -> None:
    browser, callback = _callback(world)
    world.devsite.mode("down")
    response = browser.get(
        callback, allow_redirects=False, timeout=15, headers={"Accept": "text/html"}
    )
    assert response.status_code == 502 and "unavailable" in response.text
    world.devsite.mode("ok")


def test_23_hanging_is_a_504_within_the_timeout(world: World) -> None:
    browser, callback = _callback(world)
    world.devsite.mode("hang", seconds=4)
    started = time.monotonic()
    response = browser.get(
        callback, allow_redirects=False, timeout=15, headers={"Accept": "application/json"}
    )
    assert response.status_code == 504
    assert time.monotonic() - started < 4
    world.devsite.mode("ok")


def _static_form(world: World, site: str = "team") -> tuple[FormClient, requests.Response]:
    browser = FormClient()
    page = browser.get(f"{world.gateway}/sso/{site}/login?return_url=/video/1001", timeout=15)
    assert page.status_code == 200 and 'name="password"' in page.text
    return browser, page


def test_static_login(world: World) -> None:
    browser, page = _static_form(world)
    wrong = browser.submit(page, email="ada@example.com", password="nope")
    assert wrong.status_code == 401 and "do not match" in wrong.text
    right = browser.submit(wrong, follow=False, email="ada@example.com", password=TEAM_PASSWORD)
    assert right.status_code == 302
    assert right.headers["Location"].startswith(world.devsite.url + "/api/session/redeem-token")
    landed = browser.get(right.headers["Location"], timeout=15)
    assert landed.status_code == 200 and landed.url == world.devsite.url + "/video/1001"
    assert "Welcome, Ada Lovelace" in browser.get(world.devsite.url + "/", timeout=15).text


def test_static_login_needs_the_gateways_form(world: World) -> None:
    response = requests.post(
        f"{world.gateway}/sso/team/login",
        timeout=15,
        data={
            "email": "ada@example.com",
            "password": TEAM_PASSWORD,
            "provider": "team",
            "return_url": "/",
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_form"
    assert world.calls("session/get-token") == []


def test_static_login_attempts_are_rate_limited(world: World) -> None:
    browser, page = _static_form(world)
    statuses = []
    for _ in range(7):
        page = browser.submit(page, email="ghost@example.com", password="wrong")
        statuses.append(page.status_code)
    assert statuses == [401] * 5 + [429] * 2
    blocked = browser.submit(page, follow=False, email="ghost@example.com", password=TEAM_PASSWORD)
    assert blocked.status_code == 429  # whatever the password, until the window passes


def test_chooser_for_several_providers(world: World) -> None:
    page = requests.get(f"{world.gateway}/sso/multi/login?return_url=/", timeout=15)
    assert page.status_code == 200
    assert "provider=corp" in page.text and "provider=team" in page.text


def test_site_without_sign_in(world: World) -> None:
    response = requests.get(
        f"{world.gateway}/sso/nosso/login", timeout=15, headers={"Accept": "application/json"}
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "sso_not_configured"


def test_header_identity_only_from_trusted_proxies(world: World) -> None:
    client = world.app.test_client()
    headers = {
        "X-Forwarded-Email": "vic@example.com",
        "X-Forwarded-User": "Vic",
        "X-Forwarded-Groups": "staff, video",
        "Accept": "application/json",
    }
    untrusted = client.get(
        "/sso/proxied/login", headers=headers, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert untrusted.status_code == 401
    trusted = client.get(
        "/sso/proxied/login", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert trusted.status_code == 302
    (call,) = world.calls("session/get-token")
    assert call["params"]["email"] == "vic@example.com" and call["params"]["full_name"] == "Vic"
    no_group = world.app.test_client().get(  # a new browser: no gateway session yet
        "/sso/proxied/login",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={**headers, "X-Forwarded-Groups": "staff"},
    )
    assert no_group.status_code == 403
    assert no_group.json["error"]["code"] == "group_not_allowed"


def test_existing_users_mode(world: World) -> None:
    browser, page = _static_form(world, "users")
    done = browser.submit(page, follow=False, email="ada@example.com", password=TEAM_PASSWORD)
    assert done.headers["Location"].startswith(
        world.devsite.url + "/api/user/redeem-login-token?login_token="
    )
    browser.get(done.headers["Location"], timeout=15)
    assert "(user)" in browser.get(world.devsite.url + "/", timeout=15).text
    browser, page = _static_form(world, "users")
    missing = browser.submit(page, email="nobody@example.com", password=TEAM_PASSWORD)
    assert missing.status_code == 403 and "No account" in missing.text
    assert world.calls("user/get-login-token")[0]["params"]["user_id"] == "501"


def test_logout_ends_the_gateway_and_provider_sessions(world: World) -> None:
    browser, _ = oidc_login(world, "alice")
    copied = browser.cookies.get(COOKIE)  # what an attacker could have taken before logout
    page = browser.get(f"{world.gateway}/sso/intranet/logout", allow_redirects=False, timeout=15)
    assert page.status_code == 200 and "Sign out" in page.text  # a GET only asks
    out = browser.submit(page, follow=False)
    assert out.status_code == 303
    assert out.headers["Location"].startswith(f"{world.idp.issuer}/session/end")
    assert COOKIE in out.headers["Set-Cookie"] and "Max-Age=0" in out.headers["Set-Cookie"]
    after = browser.get(f"{world.gateway}/sso/intranet/login", allow_redirects=False, timeout=15)
    assert after.headers["Location"].startswith(world.idp.issuer)  # must sign in again
    thief = requests.Session()
    thief.cookies.set(COOKIE, copied)
    stolen = thief.get(f"{world.gateway}/sso/intranet/login", allow_redirects=False, timeout=15)
    assert stolen.headers["Location"].startswith(world.idp.issuer)  # the copy is worthless


def test_session_cookie_flags(world: World) -> None:
    browser, page = _static_form(world)
    done = browser.submit(page, follow=False, email="ada@example.com", password=TEAM_PASSWORD)
    cookie = next(c for c in done.raw.headers.getlist("Set-Cookie") if c.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
