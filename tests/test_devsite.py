"""The emulated site is strict: what it accepts, 23 would accept."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import requests
from requests_oauthlib import OAuth1

from gateway.twentythree.client import TwentyThreeClient
from gateway.twentythree.tokens import time_limited_token
from gateway.twentythree.urls import embed_url, file_url, mobile_url, thumbnail_url
from tests.helpers import DEMO_READ, DEMO_SUPER, Devsite, site_settings


def _client(url: str, creds: tuple[str, str, str, str] = DEMO_SUPER) -> TwentyThreeClient:
    """A client of the legacy dialect (most of these tests are about it; test_api2 has /api/2)."""
    return TwentyThreeClient(site_settings("demo", url, *creds, api_version=1))


def _auth(creds: tuple[str, str, str, str] = DEMO_SUPER, **kw: str) -> OAuth1:
    return OAuth1(creds[0], creds[1], creds[2], creds[3], **kw)


def test_closed_home_sends_strangers_to_remote_login(devsite: Devsite) -> None:
    response = requests.get(devsite.url + "/video/1001", allow_redirects=False, timeout=5)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "http://127.0.0.1:9/login"
    assert parse_qs(location.query)["return_url"] == [devsite.url + "/video/1001"]


def test_session_token_is_single_use_and_signs_the_visitor_in(devsite: Devsite) -> None:
    token = (
        _client(devsite.url)
        .call(
            "session/get-token",
            {"email": "v@example.com", "full_name": "Vera", "return_url": "/"},
            read=False,
        )
        .payload("sessiontoken")["access_token"]
    )
    browser = requests.Session()
    redeem = f"{devsite.url}/api/session/redeem-token?session_token={token}"
    first = browser.get(redeem, allow_redirects=False, timeout=5)
    assert first.status_code == 302 and first.headers["Location"] == devsite.url + "/"
    home = browser.get(devsite.url + "/", allow_redirects=False, timeout=5)
    assert home.status_code == 200 and "Welcome, Vera" in home.text and "v@example.com" in home.text
    again = requests.get(redeem, allow_redirects=False, timeout=5)
    assert again.status_code == 403 and again.headers["Content-Type"].startswith("text/plain")


def test_session_tokens_expire_after_15_minutes(devsite: Devsite) -> None:
    token = devsite.state.issue(
        devsite.state.session_tokens,
        {"email": "a@b.c", "full_name": "", "return_url": "/", "kind": "visitor"},
    )
    expires, data = devsite.state.session_tokens[token]
    assert 899 <= expires - time.time() <= 900
    devsite.state.session_tokens[token] = (time.time() - 1, data)
    response = requests.get(
        f"{devsite.url}/api/session/redeem-token?session_token={token}",
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 403


def test_user_login_tokens(devsite: Devsite) -> None:
    client = _client(devsite.url)
    users = client.call("user/list", {"search": "ada@example.com"}).items("users")
    assert users[0]["email"] == "ada@example.com"  # emails only at admin and above
    token = client.call(
        "user/get-login-token", {"user_id": users[0]["user_id"]}, read=False
    ).payload("logintoken")["login_token"]
    browser = requests.Session()
    browser.get(f"{devsite.url}/api/user/redeem-login-token?login_token={token}", timeout=5)
    assert "Ada Lovelace" in browser.get(devsite.url + "/", timeout=5).text
    read_users = _client(devsite.url, DEMO_READ).call("user/list", {}).items("users")
    assert all("email" not in u for u in read_users)


def test_legacy_formats(devsite: Devsite) -> None:
    url = devsite.url + "/api/photo/list"
    assert requests.get(url, auth=_auth(), timeout=5).text.startswith("<?xml")
    assert requests.get(url, params={"format": "json"}, auth=_auth(), timeout=5).text.startswith(
        "var visual = {"
    )
    jsonp = requests.get(url, params={"format": "json", "callback": "cb"}, auth=_auth(), timeout=5)
    assert jsonp.text.startswith("cb({")


def test_post_ignores_the_query_string(devsite: Devsite) -> None:
    # Signed with format/raw in the query: 23 ignores them on POST, so the signature fails.
    response = requests.post(
        devsite.url + "/api/echo?format=json&raw=1", data={"a": "1"}, auth=_auth(), timeout=5
    )
    assert 'code="invalid_signature"' in response.text


def test_replayed_nonce_and_stale_timestamp_are_refused(devsite: Devsite) -> None:
    url = devsite.url + "/api/photo/list?format=json&raw=1"
    fixed = _auth()
    fixed.client.nonce = "fixednonce1234567890"
    assert requests.get(url, auth=fixed, timeout=5).json()["status"] == "ok"
    assert requests.get(url, auth=fixed, timeout=5).json()["code"] == "invalid_signature"
    stale = _auth()
    stale.client.timestamp = str(int(time.time()) - 3600)
    assert requests.get(url, auth=stale, timeout=5).json()["code"] == "invalid_signature"


def test_only_hmac_sha1(devsite: Devsite) -> None:
    url = devsite.url + "/api/photo/list?format=json&raw=1"
    sha256 = _auth(signature_method="HMAC-SHA256")
    assert requests.get(url, auth=sha256, timeout=5).json()["code"] == "invalid_signature"


def test_token_lookups_without_signature(devsite: Devsite) -> None:
    photo = devsite.photos[1003]  # unpublished: visible with its token
    url = devsite.url + "/api/photo/list"
    base = {"format": "json", "raw": "1", "photo_id": "1003"}
    ok = requests.get(url, params={**base, "token": photo.token}, timeout=5).json()
    assert ok["status"] == "ok" and ok["permission_level"] == "none"
    tlt = time_limited_token(photo.token, 1003, int(time.time()) + 60)
    assert requests.get(url, params={**base, "token": tlt}, timeout=5).json()["status"] == "ok"
    expired = time_limited_token(photo.token, 1003, int(time.time()) - 1)
    assert requests.get(url, params={**base, "token": expired}, timeout=5).json()["code"] == (
        "invalid_photo_token"
    )
    assert requests.get(url, params=base, timeout=5).json()["code"] == "token_required"


def test_media_urls_honour_time_limited_tokens(devsite: Devsite) -> None:
    photo = devsite.photos[1002]
    good = time_limited_token(photo.token, photo.photo_id, int(time.time()) + 60)
    expired = time_limited_token(photo.token, photo.photo_id, int(time.time()) - 1)
    other = time_limited_token(photo.token, 1001, int(time.time()) + 60)
    tampered = ("0" if good[0] != "0" else "1") + good[1:]
    site = devsite.url

    def status(url: str) -> int:
        return requests.get(url, allow_redirects=False, timeout=5).status_code

    for build in (
        lambda t: embed_url(site, photo.photo_id, t),
        lambda t: file_url(site, photo.tree_id, photo.photo_id, t, "video_hd"),
        lambda t: file_url(
            site, photo.tree_id, photo.photo_id, t, "video_1080p", photo.filename("video_1080p")
        ),
        lambda t: thumbnail_url(site, photo.tree_id, photo.photo_id, t, "portrait"),
        lambda t: thumbnail_url(site, photo.tree_id, photo.photo_id, t, "320x180"),
        lambda t: mobile_url(site, photo.photo_id, t),
    ):
        assert status(build(good)) in (200, 302), build(good)
        for bad in (expired, other, tampered, "nothing"):
            assert status(build(bad)) == 403, build(bad)
    assert status(file_url(site, photo.tree_id + 1, photo.photo_id, good, "video_hd")) == 403
    assert status(file_url(site, photo.tree_id, photo.photo_id, good, "video_4k")) == 404


def test_protected_token_only_at_read_level(devsite: Devsite) -> None:
    photo = devsite.photos[1004]
    seen = _client(devsite.url, DEMO_READ).call("photo/list", {"photo_id": 1004}).items("photos")
    assert seen[0]["protected_token"] == photo.protected_token
    anonymous = requests.get(
        devsite.url + "/api/photo/list",
        timeout=5,
        params={"format": "json", "raw": "1", "photo_id": "1004", "token": photo.token},
    ).json()
    assert "protected_token" not in anonymous["photos"][0]
    verified = (
        _client(devsite.url)
        .call("protection/verify", {"object_id": 1004, "protection_method": "custom"}, read=False)
        .payload("protectedtoken")
    )
    assert verified == {
        "object_id": "1004",
        "object_type": "photo",
        "protected_token": photo.protected_token,
    }


def test_log_out_goes_to_the_gateways_sign_out_page() -> None:
    """The demo's last impression: "Log out" on the site used to sign the visitor straight
    back in (the site had no remote logout URL)."""
    from gateway.devsite import DevsiteOptions, create_devsite

    logout = "http://127.0.0.1:8000/sso/demo/logout"
    site = create_devsite(DevsiteOptions(remote_logout_url=logout)).test_client()
    answer = site.get("/logout")
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"{logout}?return_url=http%3A%2F%2Flocalhost%2F"
