"""Site isolation, revocable sessions, back-channel logout and login CSRF, over real HTTP
against the emulated site and a real OpenID provider. Each test says the attack it replays."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from gateway.sessions import COOKIE
from tests.formclient import FormClient
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET
from tests.sso_world import TEAM_PASSWORD, World
from tests.test_sso import oidc_login

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture(autouse=True)
def _reset(world: World) -> None:
    world.reset()


def hop(browser: requests.Session, url: str, **kw: Any) -> requests.Response:
    return browser.get(url, allow_redirects=False, timeout=15, **kw)


def static_session(world: World, site: str = "team") -> FormClient:
    """ada@example.com, signed in with the gateway's own form (the static identity)."""
    browser = FormClient()
    page = browser.get(f"{world.gateway}/sso/{site}/login?return_url=/", timeout=15)
    done = browser.submit(page, follow=False, email="ada@example.com", password=TEAM_PASSWORD)
    assert done.status_code == 302, done.text[:300]
    return browser


def paywall_session(world: World, email: str = "alice@example.com") -> FormClient:
    """A visitor a paywall JWT vouched for (the portal identity)."""
    browser = FormClient()
    done = hop(browser, f"{world.gateway}/sso/portal/login?jwt={world.portal_token(email)}")
    assert done.status_code == 302 and "redeem-token" in done.headers["Location"], done.text[:300]
    return browser


def proxy_session(world: World) -> FormClient:
    """alice@example.com as the trusted proxy's headers said once (on the proxied site)."""
    browser = FormClient()
    done = hop(
        browser,
        f"{world.gateway}/sso/proxied/login",
        headers={"X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "video"},
    )
    assert done.status_code == 302 and "redeem-token" in done.headers["Location"]
    return browser


def player(
    browser: requests.Session,
    world: World,
    site: str,
    referer: str | None = "site",
    headers: dict[str, str] | None = None,
) -> Any:
    """The player's JSON-P call for video 1004, from the site's page (or ``referer``)."""
    headers = dict(headers or {})
    if referer == "site":
        headers["Referer"] = world.devsite.url + "/video/1004"
    elif referer is not None:
        headers["Referer"] = referer
    response = browser.get(
        f"{world.gateway}/protection/{site}",
        params={"callback": "cb", "object_type": "photo", "object_id": "1004"},
        headers=headers,
        timeout=15,
    )
    body = response.text
    assert body.startswith("/**/cb(") and body.endswith(");"), body[:200]
    return json.loads(body[len("/**/cb(") : -2])


def assert_stranger_on(world: World, browser: requests.Session, site: str) -> None:
    """Every door of ``site`` treats this browser as not signed in, and nothing reaches 23."""
    world.devsite.reset()
    login = hop(browser, f"{world.gateway}/sso/{site}/login?return_url=/")
    assert login.status_code == 302 and login.headers["Location"].startswith(world.idp.issuer)
    for path in (f"/embed/{site}/1001", f"/download/{site}/1002/video_hd"):
        response = hop(browser, world.gateway + path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith(f"/sso/{site}/login?"), path
    answer = player(browser, world, site)
    assert answer["status"] == "error" and "Sign in" in answer["message"]
    assert world.devsite.calls() == []


# ---------------------------------------------------------------- a site trusts only its own


@pytest.mark.parametrize("make", [static_session, paywall_session, proxy_session])
def test_a_session_from_another_provider_opens_nothing_on_the_intranet(
    world: World, make: Any
) -> None:
    """Attack: sign in where it is easy (a static account, a paywall token the payer typed the
    address for, the proxy of another site) with an address the intranet's domain rule
    accepts, then walk into the intranet, which trusts only its corporate OIDC provider."""
    browser = make(world)
    assert_stranger_on(world, browser, "intranet")


def test_proxy_headers_count_only_where_the_site_trusts_the_proxy(world: World) -> None:
    """Attack: the trusted proxy vouches for alice on one site; send those headers to a site
    that does not list the header identity."""
    browser = requests.Session()
    headers = {"X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "video"}
    embed = hop(browser, f"{world.gateway}/embed/intranet/1001", headers=headers)
    assert embed.status_code == 302 and embed.headers["Location"].startswith("/sso/intranet/login")


def test_sessions_stay_reusable_between_sites_that_list_the_same_provider(world: World) -> None:
    browser = static_session(world, "team")
    world.devsite.reset()
    for site in ("portal", "multi", "staffonly"):
        again = hop(browser, f"{world.gateway}/sso/{site}/login?return_url=/")
        if site == "staffonly":
            assert again.status_code == 403  # trusted there, but not in the staff group
        else:
            assert again.headers["Location"].startswith(world.devsite.url + "/api/session/")
    assert len(world.calls("session/get-token")) == 2


def test_the_trusted_proxy_opens_visitor_endpoints_directly(world: World) -> None:
    """No bounce through /sso/.../login: the proxy's word is enough on every request."""
    headers = {"X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "video"}
    browser = requests.Session()
    embed = hop(browser, f"{world.gateway}/embed/proxied/1001", headers=headers)
    assert embed.status_code == 302 and embed.headers["Location"].startswith(world.devsite.url)
    assert requests.get(embed.headers["Location"], timeout=15).status_code == 200
    download = hop(browser, f"{world.gateway}/download/proxied/1002/video_hd", headers=headers)
    assert download.status_code == 302 and "/video_hd/" in download.headers["Location"]
    ok = player(requests.Session(), world, "proxied", headers=headers)
    assert ok["status"] == "ok" and ok["protectedtoken"]["protected_token"]
    # The policy still applies: not in the "video" group.
    refused = hop(
        browser, f"{world.gateway}/embed/proxied/1001", headers={"X-Forwarded-Email": "bob@x.org"}
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    "referer", [None, "http://localhost/", "http://127.0.0.1.evil.example/video/1004"]
)
def test_jsonp_needs_a_page_of_the_video_site_whatever_the_proof(
    world: World, referer: str | None
) -> None:
    """Attack: a page on a sibling subdomain (same site, so the Lax cookie is sent) includes
    /protection with a <script> tag and reads the protected token."""
    browser = static_session(world)
    assert player(browser, world, "team")["status"] == "ok"
    answer = player(browser, world, "team", referer=referer)
    assert answer["status"] == "error" and "protectedtoken" not in answer
    proxy = {"X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "video"}
    assert player(requests.Session(), world, "proxied", headers=proxy)["status"] == "ok"
    by_proxy = player(requests.Session(), world, "proxied", referer=referer, headers=proxy)
    assert by_proxy["status"] == "error" and "protectedtoken" not in by_proxy


# ---------------------------------------------------------------- revocable sessions


def logout(browser: FormClient, world: World, site: str, **params: str) -> requests.Response:
    page = browser.get(f"{world.gateway}/sso/{site}/logout", params=params, timeout=15)
    assert page.status_code == 200 and "Sign out" in page.text, page.text[:300]
    return browser.submit(page, follow=False)


def test_a_cookie_copied_before_logout_is_worthless_after(world: World) -> None:
    """Attack: copy the session cookie (a shared computer, a stolen backup), wait for the
    owner to sign out, then use the copy."""
    browser = static_session(world)
    copied = browser.cookies.get(COOKIE)
    out = logout(browser, world, "team")
    assert out.status_code == 200 and "You are signed out" in out.text
    thief = requests.Session()
    thief.cookies.set(COOKIE, copied)
    login = hop(thief, f"{world.gateway}/sso/team/login?return_url=/")
    assert login.status_code == 200 and 'name="password"' in login.text  # the form again
    embed = hop(thief, f"{world.gateway}/embed/team/1001")
    assert embed.headers["Location"].startswith("/sso/team/login")
    assert player(thief, world, "team")["status"] == "error"


def test_logout_is_a_post_with_a_form_token(world: World) -> None:
    """Attack: an <img src=".../logout"> or a forged POST from another page."""
    browser = static_session(world)
    page = hop(browser, f"{world.gateway}/sso/team/logout")
    assert page.status_code == 200  # only asks
    forged = browser.post(f"{world.gateway}/sso/team/logout", allow_redirects=False, timeout=15)
    assert forged.status_code == 400
    still = hop(browser, f"{world.gateway}/sso/team/login?return_url=/")
    assert still.status_code == 302 and "redeem-token" in still.headers["Location"]


def test_logout_return_url_is_validated_like_logins(world: World) -> None:
    """Attack: an open redirect through the logout page."""
    browser = static_session(world)
    for evil in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        response = hop(browser, f"{world.gateway}/sso/team/logout", params={"return_url": evil})
        assert response.status_code == 400, evil
    out = logout(browser, world, "team", return_url="/video/1001")
    assert out.status_code == 303 and out.headers["Location"] == world.devsite.url + "/video/1001"


def test_logout_when_not_signed_in_links_back_to_the_site(world: World) -> None:
    page = requests.get(f"{world.gateway}/sso/team/logout", timeout=15)
    assert page.status_code == 200 and "You are signed out" in page.text
    assert f'href="{world.devsite.url}/"' in page.text


def test_logout_on_one_instance_ends_the_session_on_every_instance(
    redis_url: str, devsite: Any
) -> None:
    """Two gateways on one Redis: a cookie signed out on A is refused by B."""
    from gateway import create_app
    from gateway.passwords import hash_password
    from tests.helpers import make_settings, site_table

    ada = {"email": "ada@example.com", "password_hash": hash_password("pw-12345")}
    team = {"type": "static", "users": [ada]}
    sites = {"team": site_table(devsite.url, identity="team")}
    settings = make_settings(sites, store={"url": redis_url}, identity={"team": team})
    a, b = create_app(settings).test_client(), create_app(settings).test_client()
    form = a.get("/sso/team/login?return_url=/").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    done = a.post(
        "/sso/team/login",
        data={
            "csrf": csrf.group(1),
            "provider": "team",
            "email": "ada@example.com",
            "password": "pw-12345",
        },
    )
    assert done.status_code == 302
    cookie = a.get_cookie(COOKIE)
    assert cookie is not None
    b.set_cookie(COOKIE, cookie.value)
    assert "redeem-token" in b.get("/sso/team/login?return_url=/").headers["Location"]
    page = a.get("/sso/team/logout").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token and a.post("/sso/team/logout", data={"csrf": token.group(1)}).status_code == 200
    after = b.get("/sso/team/login?return_url=/")
    assert after.status_code == 200 and "password" in after.get_data(as_text=True)


# ---------------------------------------------------------------- back-channel logout


def test_backchannel_logout_from_the_real_provider(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The visitor signs out at the IdP (not at the gateway); the IdP tells the gateway over
    the back channel, and the gateway session dies with it, copies included."""
    browser, final = oidc_login(world, "alice")
    assert final.status_code == 200
    copied = browser.cookies.get(COOKIE)
    caplog.set_level(logging.INFO, logger="gateway.audit")
    end = browser.get(
        f"{world.idp.issuer}/session/end", params={"client_id": CLIENT_ID}, timeout=15
    )
    assert end.status_code == 200, end.text[:300]
    browser.submit(end, logout="yes")
    assert any(r.getMessage() == "sso_backchannel_logout" for r in caplog.records)
    for who in (browser, _with_cookie(copied)):
        again = hop(who, f"{world.gateway}/sso/intranet/login?return_url=/")
        assert again.headers["Location"].startswith(world.idp.issuer)


def _with_cookie(value: str | None) -> requests.Session:
    session = requests.Session()
    session.cookies.set(COOKIE, value or "")
    return session


def logout_token(world: World, key: RSAKey | None = None, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": world.idp.issuer,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_hex(8),
        "sub": "alice",
        "events": {BACKCHANNEL_EVENT: {}},
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    signing = key or world.idp.signing_key
    assert signing is not None
    header = {"alg": "RS256", "kid": signing.kid, "typ": "logout+jwt"}
    return jwt.encode(header, claims, signing)


def send_logout(world: World, token: str) -> requests.Response:
    return requests.post(
        f"{world.gateway}/sso/oidc/corp/backchannel-logout",
        data={"logout_token": token},
        timeout=15,
    )


def test_a_subject_only_logout_token_ends_every_session_of_that_person(world: World) -> None:
    browser, _ = oidc_login(world, "alice")
    answer = send_logout(world, logout_token(world, sub="alice"))
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    again = hop(browser, f"{world.gateway}/sso/intranet/login?return_url=/")
    assert again.headers["Location"].startswith(world.idp.issuer)


def _forged(world: World) -> dict[str, str]:
    assert world.idp.signing_key is not None
    other = RSAKey.generate_key(2048, {"kid": world.idp.signing_key.kid})  # same kid, other key
    hs = jwt.encode(
        {"alg": "HS256"},
        {
            "iss": world.idp.issuer,
            "aud": CLIENT_ID,
            "iat": int(time.time()),
            "jti": secrets.token_hex(8),
            "sub": "alice",
            "events": {BACKCHANNEL_EVENT: {}},
        },
        OctKey.import_key(CLIENT_SECRET),
    )
    return {
        "signed by another key": logout_token(world, key=other),
        "HS256 with the client secret": hs,
        "wrong issuer": logout_token(world, iss="https://evil.example"),
        "wrong audience": logout_token(world, aud="someone-else"),
        "no events claim": logout_token(world, events=None),
        "wrong event": logout_token(world, events={"http://example.com/other": {}}),
        "an id token (nonce)": logout_token(world, nonce="n-0123"),
        "no sid or sub": logout_token(world, sub=None),
        "no jti": logout_token(world, jti=None),
        "no iat": logout_token(world, iat=None),
        "stale iat": logout_token(world, iat=int(time.time()) - 3600, exp=None),
        "expired": logout_token(world, exp=int(time.time()) - 300),
        "not a jwt": "not-a-jwt",
        "empty": "",
    }


def test_hostile_logout_tokens_are_refused_and_revoke_nothing(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    browser, _ = oidc_login(world, "alice")
    caplog.set_level(logging.INFO, logger="gateway.audit")
    for name, token in _forged(world).items():
        answer = send_logout(world, token)
        assert answer.status_code == 400, name
        assert answer.json()["error"] == "invalid_request", name
    refusals = [r for r in caplog.records if r.getMessage() == "backchannel_logout_refused"]
    assert len(refusals) == len(_forged(world))
    still = hop(browser, f"{world.gateway}/sso/intranet/login?return_url=/")
    assert "redeem-token" in still.headers["Location"]  # nothing was revoked


def test_a_logout_token_is_accepted_once(world: World) -> None:
    token = logout_token(world, sid="some-idp-session")
    assert send_logout(world, token).status_code == 200
    assert send_logout(world, token).status_code == 400  # a replayed jti


# ---------------------------------------------------------------- login CSRF


def test_a_paywall_token_does_not_silently_replace_another_visitor(world: World) -> None:
    """Attack: send a signed-in visitor a link carrying the attacker's own paywall token, so
    the visitor watches (and is recorded) as the attacker."""
    browser = static_session(world, "portal")
    world.devsite.reset()
    token = world.portal_token("mallory@example.net")
    page = hop(browser, f"{world.gateway}/sso/portal/login?return_url=/&jwt={token}")
    assert page.status_code == 200 and "Continue as mallory@example.net" in page.text
    assert "ada@example.com" in page.text
    assert world.calls("session/get-token") == []
    still = hop(browser, f"{world.gateway}/sso/portal/login?return_url=/")
    assert "redeem-token" in still.headers["Location"]
    (call,) = world.calls("session/get-token")
    assert call["params"]["email"] == "ada@example.com"  # still ada
    # The visitor may choose to switch, with the page's own form; the token then is used up.
    confirm = browser.get(f"{world.gateway}/sso/portal/login?return_url=/&jwt={token}", timeout=15)
    switched = browser.submit(confirm, follow=False)
    assert switched.status_code == 302 and "redeem-token" in switched.headers["Location"]
    assert world.calls("session/get-token")[-1]["params"]["email"] == "mallory@example.net"
    replay = hop(FormClient(), f"{world.gateway}/sso/portal/login?jwt={token}")
    assert replay.status_code == 401


def test_a_paywall_token_in_a_subresource_signs_nobody_in(world: World) -> None:
    """Attack: <iframe src="/sso/portal/login?jwt=..."> on another site."""
    token = world.portal_token("mallory@example.net")
    framed = hop(
        requests.Session(),
        f"{world.gateway}/sso/portal/login?jwt={token}",
        headers={
            "Sec-Fetch-Dest": "iframe",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Site": "cross-site",
        },
    )
    assert framed.status_code == 200 and "Continue as" in framed.text
    assert framed.headers["X-Frame-Options"] == "DENY"
    assert world.calls("session/get-token") == []
    direct = hop(requests.Session(), f"{world.gateway}/sso/portal/login?jwt={token}")
    assert direct.status_code == 302  # a top-level visit with no one signed in: straight on


def test_the_continue_page_needs_its_own_form_token(world: World) -> None:
    token = world.portal_token("mallory@example.net")
    forged = requests.post(
        f"{world.gateway}/sso/portal/login",
        data={"jwt": token, "provider": "portal", "return_url": "/"},
        headers={"Accept": "application/json"},
        timeout=15,
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_form"
    assert world.calls("session/get-token") == []


def test_a_failed_callback_is_audited_and_never_reaches_23(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.audit")
    response = requests.get(
        f"{world.gateway}/sso/oidc/corp/callback?state=x&code=y",
        headers={"Accept": "application/json"},
        timeout=15,
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_state"
    (failed,) = [r for r in caplog.records if r.getMessage() == "sso_failed"]
    assert failed.__dict__["provider"] == "corp" and failed.__dict__["detail"] == "invalid_state"
    assert world.devsite.calls() == []
