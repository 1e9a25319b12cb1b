"""Visitor links (/embed, /download) and the player's protection endpoint, over real HTTP
against the emulated site: every URL handed out is fetched there."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from gateway.twentythree.tokens import parse_token
from tests.formclient import FormClient
from tests.sso_world import TEAM_PASSWORD, World


@pytest.fixture(autouse=True)
def _reset(world: World) -> None:
    world.reset()


def signed_in(world: World, site: str = "team") -> FormClient:
    browser = FormClient()
    page = browser.get(f"{world.gateway}/sso/{site}/login?return_url=/", timeout=15)
    done = browser.submit(page, follow=False, email="ada@example.com", password=TEAM_PASSWORD)
    assert done.status_code == 302, done.text[:300]
    world.devsite.reset()  # the sign-in's own 23 call is not what the tests count
    return browser


def hop(browser: FormClient, url: str) -> requests.Response:
    return browser.get(url, allow_redirects=False, timeout=15)


# ---------------------------------------------------------------- /embed and /download


def test_embed_sends_a_stranger_through_sign_in_and_back(world: World) -> None:
    browser = FormClient()
    first = hop(browser, f"{world.gateway}/embed/team/1001")
    assert first.status_code == 302
    login = first.headers["Location"]
    assert parse_qs(urlsplit(login).query)["next"] == ["/embed/team/1001"]
    form = browser.get(f"{world.gateway}{login}", timeout=15)
    back = browser.submit(form, follow=False, email="ada@example.com", password=TEAM_PASSWORD)
    assert back.status_code == 302 and back.headers["Location"] == "/embed/team/1001"
    player = hop(browser, world.gateway + back.headers["Location"])
    assert player.status_code == 302
    landed = browser.get(player.headers["Location"], timeout=15)
    assert landed.status_code == 200 and 'data-photo-id="1001"' in landed.text
    # Coming back to a gateway link makes no 23 session: only the photo lookup reached 23.
    assert world.calls("session/get-token") == []
    assert [c["method"] for c in world.devsite.calls()] == ["photo/list"]


def test_embed_for_a_signed_in_visitor(world: World, caplog: pytest.LogCaptureFixture) -> None:
    browser = signed_in(world)
    caplog.set_level(logging.INFO, logger="gateway.audit")
    response = hop(browser, f"{world.gateway}/embed/team/1001")
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "private, no-store"
    location = response.headers["Location"]
    assert location.startswith(world.devsite.url + "/v.ihtml?")
    query = parse_qs(urlsplit(location).query)
    parsed = parse_token(query["token"][0])
    assert parsed is not None
    expire = parsed[1]
    assert query["photo_id"] == ["1001"] and query["source"] == ["embed"]
    assert requests.get(location, timeout=15).status_code == 200
    minted = [r for r in caplog.records if r.getMessage() == "tokens_minted"]
    assert minted and minted[-1].__dict__["email"] == "ada@example.com"
    assert minted[-1].__dict__["via"] == "embed" and minted[-1].__dict__["expire"] == expire
    ours = [r for r in caplog.records if r.name.startswith("gateway")]
    assert query["token"][0] not in repr([r.__dict__ for r in ours])


def test_tampered_embed_token_is_refused_by_the_site(world: World) -> None:
    browser = signed_in(world)
    location = hop(browser, f"{world.gateway}/embed/team/1001").headers["Location"]
    token = parse_qs(urlsplit(location).query)["token"][0]
    forged = token[:-1] + ("1" if token[-1] != "1" else "2")
    assert requests.get(location.replace(token, forged), timeout=15).status_code == 403


def test_download_of_a_format(world: World) -> None:
    browser = signed_in(world)
    response = hop(browser, f"{world.gateway}/download/team/1002/video_1080p")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert re.fullmatch(
        re.escape(world.devsite.url) + r"/7001/1002/[0-9a-f]{40}-\d+/video_1080p/[\w.-]+\.mp4",
        location,
    )
    fetched = requests.get(location, timeout=15)
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "video/mp4"
    audio = hop(browser, f"{world.gateway}/download/team/1002/audio")
    assert requests.get(audio.headers["Location"], timeout=15).status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/download/team/1001/video_1080p", 404, "no_such_format"),  # 1001 has no 1080p
        ("/download/team/1001/Video_HD", 404, "no_such_format"),
        ("/download/team/1001/" + "x" * 41, 404, "no_such_format"),
        ("/embed/team/999999", 404, "no_such_photo"),
        ("/embed/team/0", 400, "invalid_photo_id"),
        ("/embed/team/-5", 400, "invalid_photo_id"),
        ("/embed/team/1e3", 400, "invalid_photo_id"),
        ("/embed/team/12345678901234567", 400, "invalid_photo_id"),
        ("/embed/nowhere/1001", 404, "no_such_site"),
    ],
)
def test_bad_links(world: World, path: str, status: int, code: str) -> None:
    browser = signed_in(world)
    response = browser.get(world.gateway + path, headers={"Accept": "application/json"}, timeout=15)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_bad_links_make_no_upstream_call(world: World) -> None:
    browser = signed_in(world)
    expected = {"/embed/team/abc": 400, "/download/team/1001/..%2f..": 404, "/embed/team/00": 400}
    for path, status in expected.items():
        assert hop(browser, world.gateway + path).status_code == status, path
    assert world.devsite.calls() == []


def test_a_visitor_the_policy_refuses_gets_403(world: World) -> None:
    browser = FormClient()
    form = browser.get(f"{world.gateway}/embed/staffonly/1001", timeout=15)
    assert 'name="password"' in form.text
    # ada has no "staff" group: refused after the form, with no session and no 23 call.
    refused = browser.submit(form, email="ada@example.com", password=TEAM_PASSWORD)
    assert refused.status_code == 403 and "cannot enter" in refused.text
    assert world.devsite.calls() == []


def test_the_session_from_one_site_is_checked_against_the_others_policy(world: World) -> None:
    browser = signed_in(world)  # signed in through "team", which has no policy
    response = hop(browser, f"{world.gateway}/embed/staffonly/1001")
    assert response.status_code == 403 and world.devsite.calls() == []


def test_site_without_sign_in_says_so(world: World) -> None:
    response = requests.get(
        f"{world.gateway}/embed/nosso/1001", headers={"Accept": "application/json"}, timeout=15
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "sso_not_configured"


def test_23_down_is_502_for_a_cold_video(world: World) -> None:
    browser = signed_in(world)
    world.devsite.mode("down")
    response = browser.get(
        f"{world.gateway}/embed/team/1002", headers={"Accept": "application/json"}, timeout=15
    )
    assert response.status_code == 502


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example/embed/team/1",
        "https://evil.example/embed/team/1",
        "/embed/intranet/1001",  # another site's link
        "/embed/team/1001/../../sso/team/logout",
        "/embed/team/1001?x=1",
        "/embed/team/1001%0d%0aSet-Cookie:x",
        "/Embed/team/1001",
        "/download/team/1001",
        "/download/team/1001/video_hd/extra",
        "/embed/team/0",
        "javascript:alert(1)",
        "/\\evil.example",
    ],
)
def test_hostile_next_is_refused(world: World, value: str) -> None:
    response = requests.get(
        f"{world.gateway}/sso/team/login",
        params={"return_url": "/", "next": value},
        headers={"Accept": "application/json"},
        timeout=15,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_next"


# ---------------------------------------------------------------- /protection (JSON-P)


def call_player(
    browser: requests.Session | None, world: World, photo_id: int | str, **params: str
) -> requests.Response:
    query = {
        "callback": "cb",
        "protection_method": "custom",
        "object_type": "photo",
        "object_id": str(photo_id),
        **params,
    }
    return (browser or requests.Session()).get(
        f"{world.gateway}/protection/team",
        params=query,
        headers={"Referer": world.devsite.url + f"/video/{photo_id}"},
        timeout=15,
    )


def jsonp_payload(response: requests.Response, callback: str = "cb") -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/javascript")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    match = re.fullmatch(r"/\*\*/" + re.escape(callback) + r"\((.*)\);", response.text, re.S)
    assert match, response.text
    payload: dict[str, Any] = json.loads(match.group(1))
    return payload


def test_protection_gives_the_protected_token_to_an_allowed_visitor(world: World) -> None:
    protected = world.devsite.photos[1004].protected_token
    browser = signed_in(world)
    response = call_player(browser, world, 1004)
    assert response.status_code == 200
    assert jsonp_payload(response) == {
        "status": "ok",
        "protectedtoken": {
            "object_id": "1004",
            "object_type": "photo",
            "protected_token": protected,
        },
    }
    assert "no-store" in response.headers["Cache-Control"]
    call_player(browser, world, 1004)
    assert len(world.calls("photo/list")) == 1  # the second answer came from the cache


def test_protection_callback_paths_are_echoed_verbatim(world: World) -> None:
    browser = signed_in(world)
    for name in ("jQuery_123.callbacks.cb_1", "$", "_x$9", "a" * 64):
        response = call_player(browser, world, 1004, callback=name)
        assert jsonp_payload(response, name)["status"] == "ok"


@pytest.mark.parametrize(
    "callback",
    [
        "",
        "1abc",
        "a" * 65,
        "alert(1)",
        "a;alert(1)",
        "a b",
        "a\nb",
        "a-b",
        "a[0]",
        "cb//",
        "<script>",
        "\u00e9t\u00e9",  # non-ASCII letters are not plain identifiers here
        "cb\u2028",
        "cb%0a",
    ],
)
def test_bad_callbacks_are_400_json(world: World, callback: str) -> None:
    response = call_player(None, world, 1004, callback=callback)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "invalid_callback"
    if callback:
        assert callback not in response.text
    assert world.devsite.calls() == []


def test_missing_callback_is_400(world: World) -> None:
    response = requests.get(f"{world.gateway}/protection/team?object_id=1004", timeout=15)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("params", "signed", "message"),
    [
        ({}, False, "Sign in"),
        ({"object_id": "1001"}, True, "not protected"),
        ({"object_id": "999999"}, True, "does not exist"),
        ({"object_id": "abc"}, True, "object_id"),
        ({"object_id": "<b>"}, True, "object_id"),
        ({"object_type": "live"}, True, "object_type=photo"),
    ],
)
def test_protection_error_forms(
    world: World, params: dict[str, str], signed: bool, message: str
) -> None:
    browser = signed_in(world) if signed else None
    params = dict(params)  # the parameter is shared by every run of this case
    response = call_player(browser, world, params.pop("object_id", "1004"), **params)
    assert response.status_code == 200  # the player only runs a script that loaded
    payload = jsonp_payload(response)
    assert payload["status"] == "error" and message in payload["message"]
    assert "protectedtoken" not in payload and "<" not in response.text


def test_protection_refuses_a_visitor_the_policy_refuses(world: World) -> None:
    browser = signed_in(world)
    response = browser.get(
        f"{world.gateway}/protection/staffonly",
        params={"callback": "cb", "object_type": "photo", "object_id": "1004"},
        timeout=15,
    )
    payload = jsonp_payload(response)
    assert payload["status"] == "error" and world.devsite.calls() == []


def test_protection_when_23_is_down(world: World) -> None:
    browser = signed_in(world)
    world.devsite.mode("down")
    response = call_player(browser, world, 1004)
    assert response.status_code == 502
    assert jsonp_payload(response)["status"] == "error"


# ---------------------------------------------------------------- the player's cookie (https)


def test_player_cookie_is_believed_only_from_the_sites_own_pages(devsite: Any) -> None:
    from gateway import create_app
    from tests.helpers import make_settings, site_table

    settings = make_settings(
        {"demo": site_table(devsite.url, identity="proxy")},
        gateway={"public_url": "https://sso.example.test", "trusted_proxies": ["127.0.0.1/32"]},
        identity={"proxy": {"type": "header"}},
    )
    client = create_app(settings).test_client(use_cookies=False)
    login = client.get(
        "/sso/demo/login?return_url=/", headers={"X-Forwarded-Email": "ada@example.com"}
    )
    assert login.status_code == 302
    cookies = {c.split("=", 1)[0]: c for c in login.headers.getlist("Set-Cookie")}
    # On https at the root path: __Host- (no Domain, Path=/); the player copy keeps its path.
    lax, player = cookies["__Host-gw_session"], cookies["__Secure-gw_player"]
    assert "Secure" in lax and "SameSite=Lax" in lax and "HttpOnly" in lax and "Path=/;" in lax
    assert "Domain" not in lax
    assert "Secure" in player and "SameSite=None" in player and "HttpOnly" in player
    assert "Path=/protection/" in player
    value = player.split(";", 1)[0].split("=", 1)[1]

    def ask(referer: str | None) -> dict[str, Any]:
        headers = {"Cookie": f"__Secure-gw_player={value}"}
        if referer is not None:
            headers["Referer"] = referer
        response = client.get(
            "/protection/demo?callback=cb&object_type=photo&object_id=1004", headers=headers
        )
        body = response.get_data(as_text=True)
        payload: dict[str, Any] = json.loads(body[len("/**/cb(") : -len(");")])
        return payload

    assert ask(devsite.url + "/video/1004")["status"] == "ok"
    for referer in (None, "https://evil.example/", devsite.url.replace("127.0.0.1", "localhost")):
        answer = ask(referer)
        assert answer["status"] == "error" and "Sign in" in answer["message"]
    # The player copy opens nothing but /protection.
    embed = client.get("/embed/demo/1001", headers={"Cookie": f"__Secure-gw_player={value}"})
    assert embed.status_code == 302 and "/sso/demo/login" in embed.headers["Location"]
    # Signing out (a POST from the confirm page) deletes both copies.
    jar = f"__Host-gw_session={value}"
    page = client.get("/sso/demo/logout", headers={"Cookie": jar})
    assert page.status_code == 200 and "Sign out" in page.get_data(as_text=True)
    form_cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True))
    assert csrf and form_cookie.startswith("__Host-gw_form=")
    out = client.post(
        "/sso/demo/logout",
        data={"csrf": csrf.group(1)},
        headers={"Cookie": f"{jar}; {form_cookie}"},
    )
    gone = [c for c in out.headers.getlist("Set-Cookie") if c.startswith("__Secure-gw_player=")]
    assert gone and "Path=/protection/" in gone[0] and "Expires=Thu, 01 Jan 1970" in gone[0]
    # ...and the session is revoked: the copy taken before logout opens nothing any more.
    assert ask(devsite.url + "/video/1004")["status"] == "error"


def test_the_warm_embed_answers_like_the_cold_one(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The first embed of a video (cold: the Flask view looks it up) and the next ones (warm:
    the fast path in web/embed_fast.py) answer, audit and count alike; a revoked session or a
    refused visitor is never served warm."""
    browser = signed_in(world)
    caplog.set_level(logging.INFO, logger="gateway.audit")
    answers = [hop(browser, f"{world.gateway}/embed/team/1002") for _ in range(3)]
    assert [a.status_code for a in answers] == [302] * 3
    assert {a.headers["Cache-Control"] for a in answers} == {"private, no-store"}
    shapes = {re.sub(r"token=[^&]+", "token=T", a.headers["Location"]) for a in answers}
    assert len(shapes) == 1 and [c["method"] for c in world.devsite.calls()] == ["photo/list"]
    minted = [r.__dict__ for r in caplog.records if r.getMessage() == "tokens_minted"]
    assert len(minted) == 3 and {m["via"] for m in minted} == {"embed"}
    assert {m["email"] for m in minted} == {"ada@example.com"}
    stranger = hop(FormClient(), f"{world.gateway}/embed/team/1002")
    assert stranger.status_code == 302 and "/sso/team/login" in stranger.headers["Location"]
    page = browser.get(f"{world.gateway}/sso/team/logout", timeout=15)
    copied = browser.cookies.get("gw_session")
    browser.submit(page, follow=False)
    thief = FormClient()
    thief.cookies.set("gw_session", copied or "")
    after = hop(thief, f"{world.gateway}/embed/team/1002")
    assert "/sso/team/login" in after.headers["Location"]  # revoked: through sign-in again
