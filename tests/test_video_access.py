"""Playback-long tokens, access rules per channel and tag, and the cold-lookup guard, over real
HTTP (and in Chromium) against the emulated site: every link handed out is opened there."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import Page

from gateway.twentythree.tokens import parse_token
from tests.catalogue_world import COLD_BUDGET, PASSWORD, VERY_LONG, CatalogueWorld
from tests.formclient import FormClient
from tests.helpers import wait_for_a_fresh_minute

SHORT, LONG, BOARD, PREMIUM = 1001, 1002, 1005, 1004  # 95 s, 5400 s, board channel, premium tag
VISITOR_TTL, VISITOR_TTL_MAX = 3600, 43200


@pytest.fixture(autouse=True)
def _fresh(catalogue_world: CatalogueWorld) -> None:
    catalogue_world.devsite.mode("ok")
    catalogue_world.devsite.reset()


_SIGNED_IN: dict[tuple[int, str, str], FormClient] = {}


def signed_in(world: CatalogueWorld, email: str, site: str = "videos") -> FormClient:
    """A browser signed in as ``email`` (one sign-in per world and person: the gateway's
    sign-in rate limits are not what these tests are about)."""
    key = (id(world), email, site)
    if key in _SIGNED_IN:
        return _SIGNED_IN[key]
    browser = _SIGNED_IN[key] = FormClient()
    page = browser.get(f"{world.gateway}/sso/{site}/login?return_url=/", timeout=15)
    done = browser.submit(page, follow=False, email=email, password=PASSWORD)
    assert done.status_code == 302, done.text[:300]
    return browser


def embed(browser: FormClient, world: CatalogueWorld, photo_id: int, site: str = "videos") -> Any:
    return browser.get(
        f"{world.gateway}/embed/{site}/{photo_id}", allow_redirects=False, timeout=15
    )


def lifetime(location: str) -> int:
    token = parse_qs(urlsplit(location).query)["token"][0]
    parsed = parse_token(token)
    assert parsed is not None
    return parsed[1] - int(time.time())


# ---------------------------------------------------------------- playback-long tokens


@pytest.mark.parametrize(
    ("photo_id", "expected"),
    [
        (SHORT, VISITOR_TTL),  # 2 x 95 + 600 < visitor_ttl: visitor_ttl
        (LONG, 2 * 5400 + 600),
        (VERY_LONG, VISITOR_TTL_MAX),  # ten hours: capped
    ],
)
def test_embed_tokens_outlast_the_playback(
    catalogue_world: CatalogueWorld, photo_id: int, expected: int
) -> None:
    browser = signed_in(catalogue_world, "ada@example.com")
    response = embed(browser, catalogue_world, photo_id)
    assert response.status_code == 302
    assert expected - 5 <= lifetime(response.headers["Location"]) <= expected + 1
    assert requests.get(response.headers["Location"], timeout=15).status_code == 200


def test_download_tokens_outlast_the_playback(catalogue_world: CatalogueWorld) -> None:
    browser = signed_in(catalogue_world, "ada@example.com")
    response = browser.get(
        f"{catalogue_world.gateway}/download/videos/{LONG}/video_1080p",
        allow_redirects=False,
        timeout=15,
    )
    assert response.status_code == 302
    path = urlsplit(response.headers["Location"]).path
    expire = int(path.split("/")[3].rsplit("-", 1)[1])
    assert 2 * 5400 + 600 - 5 <= expire - time.time() <= 2 * 5400 + 601
    assert requests.get(response.headers["Location"], timeout=15).status_code == 200


def test_mint_cover_playback(catalogue_world: CatalogueWorld) -> None:
    world = catalogue_world
    ids = [SHORT, LONG, VERY_LONG]
    plain = world.mint({"photo_ids": ids, "ttl": 600}).json()["tokens"]
    now = time.time()
    assert [round(i["expire"] - now) for i in plain] == pytest.approx([600] * 3, abs=3)
    covered = world.mint({"photo_ids": ids, "ttl": 600, "cover_playback": True}).json()["tokens"]
    lives = [i["expire"] - time.time() for i in covered]
    assert lives == pytest.approx([2 * 95 + 600, 2 * 5400 + 600, 2 * 36000 + 600], abs=3)
    for item in covered:  # the longer tokens are real tokens for that expiry
        assert item["token"].endswith(f"-{item['expire']}")
        assert requests.get(item["urls"]["embed"], timeout=15).status_code == 200
    # Still capped by the key's max_ttl (86400 here): ask for longer than any playback.
    long_ttl = world.mint({"photo_ids": [SHORT], "ttl": 80000, "cover_playback": True})
    assert long_ttl.json()["tokens"][0]["expire"] - time.time() == pytest.approx(80000, abs=3)


def test_cover_playback_is_a_boolean(catalogue_world: CatalogueWorld) -> None:
    response = catalogue_world.mint({"photo_ids": [SHORT], "cover_playback": "yes"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cover_playback"


def test_expire_bucket_applies_after_playback(catalogue_world: CatalogueWorld) -> None:
    """The "bucketed" site rounds expiry up to 600 s: after the playback rule, not before."""
    world = catalogue_world
    browser = signed_in(world, "ada@example.com", site="bucketed")
    location = embed(browser, world, LONG, site="bucketed").headers["Location"]
    expire = int(parse_qs(urlsplit(location).query)["token"][0].rsplit("-", 1)[1])
    assert expire % 600 == 0 and expire - time.time() >= 2 * 5400 + 600


# ---------------------------------------------------------------- access rules


@pytest.mark.parametrize(
    ("email", "photo_id", "allowed"),
    [
        ("ada@example.com", BOARD, True),  # board group
        ("carol@example.com", BOARD, False),  # not in board
        ("bob@example.org", BOARD, True),  # board, any domain
        ("carol@example.com", PREMIUM, True),  # premium: example.com only
        ("bob@example.org", PREMIUM, False),
        ("carol@example.com", SHORT, True),  # no rule covers it
        ("carol@example.com", 2001 + 3, False),  # a generated video in the board channel too
    ],
)
def test_rules_on_embed(
    catalogue_world: CatalogueWorld,
    email: str,
    photo_id: int,
    allowed: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    browser = signed_in(catalogue_world, email)
    caplog.set_level(logging.INFO, logger="gateway.audit")
    response = embed(browser, catalogue_world, photo_id)
    if allowed:
        assert response.status_code == 302
        assert requests.get(response.headers["Location"], timeout=15).status_code == 200
        return
    assert response.status_code == 403
    assert "text/html" in response.headers["Content-Type"]
    as_json = browser.get(
        f"{catalogue_world.gateway}/embed/videos/{photo_id}",
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=15,
    )
    assert as_json.status_code == 403
    assert as_json.json()["error"]["code"] == "forbidden_by_rule"
    denied = [r for r in caplog.records if r.getMessage() == "access_denied"]
    assert denied and denied[-1].__dict__["email"] == email
    assert denied[-1].__dict__["photo_ids"] == [photo_id]
    assert denied[-1].__dict__["detail"] in {"group_not_allowed", "domain_not_allowed"}


def test_rules_on_download_and_protection(catalogue_world: CatalogueWorld) -> None:
    world = catalogue_world
    carol, bob = signed_in(world, "carol@example.com"), signed_in(world, "bob@example.org")
    refused = carol.get(
        f"{world.gateway}/download/videos/{BOARD}/video_hd", allow_redirects=False, timeout=15
    )
    assert refused.status_code == 403

    def player(browser: FormClient) -> str:
        return str(
            browser.get(
                f"{world.gateway}/protection/videos",
                params={"callback": "cb", "object_type": "photo", "object_id": str(PREMIUM)},
                headers={"Referer": f"{world.devsite.url}/video/{PREMIUM}"},
                timeout=15,
            ).text
        )

    assert '"status": "ok"' in player(carol)  # premium, example.com
    answer = player(bob)
    assert '"status": "error"' in answer and "protected_token" not in answer


def test_the_mint_api_applies_rules_only_for_keys_that_enforce_them(
    catalogue_world: CatalogueWorld,
) -> None:
    world = catalogue_world
    free = world.mint({"photo_ids": [SHORT, BOARD, PREMIUM]}).json()["tokens"]
    assert all("token" in item for item in free)  # the backend decided already
    strict = world.mint({"photo_ids": [SHORT, BOARD, PREMIUM]}, key="strict").json()["tokens"]
    assert "token" in strict[0]
    assert [i["error"]["code"] for i in strict[1:]] == ["forbidden_by_rule"] * 2
    board = {"email": "ada@example.com", "groups": ["board"]}
    named = world.mint({"photo_ids": [BOARD, PREMIUM], "visitor": board}, key="strict")
    assert all("token" in i for i in named.json()["tokens"])
    outsider = {"email": "bob@example.org", "groups": ["staff"]}
    refused = world.mint({"photo_ids": [BOARD, PREMIUM], "visitor": outsider}, key="strict")
    assert [i["error"]["code"] for i in refused.json()["tokens"]] == ["forbidden_by_rule"] * 2


@pytest.mark.parametrize(
    "visitor",
    [
        "ada@example.com",
        {"email": "not an address"},
        {"email": "ada@example.com", "groups": "board"},
        {"email": "ada@example.com", "groups": [1]},
        {"email": "ada@example.com", "role": "admin"},
    ],
)
def test_a_malformed_visitor_is_400(catalogue_world: CatalogueWorld, visitor: Any) -> None:
    response = catalogue_world.mint({"photo_ids": [SHORT], "visitor": visitor}, key="strict")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_visitor"


# ---------------------------------------------------------------- the cold-lookup guard


def test_cold_lookups_are_limited_per_key(catalogue_world: CatalogueWorld) -> None:
    world = catalogue_world
    wait_for_a_fresh_minute(30)  # the budget refills each minute: all of this within one
    world.forget_first_levels()
    first = list(range(2101, 2201))
    assert world.mint({"photo_ids": first}, key="tiny", site="ondemand").status_code == 200
    assert len(world.calls()) == 100
    world.devsite.reset()
    over = world.mint({"photo_ids": list(range(2201, 2301))}, key="tiny", site="ondemand")
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "too_many_cold_lookups"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert world.calls() == []  # refused before anything reached 23
    # What is cached costs nothing: the same 100 again go through.
    assert world.mint({"photo_ids": first}, key="tiny", site="ondemand").status_code == 200
    # A refused call took nothing: the rest of the minute's budget is still there.
    rest = list(range(2301, 2301 + COLD_BUDGET - 100))
    assert world.mint({"photo_ids": rest}, key="tiny", site="ondemand").status_code == 200
    assert len(world.calls()) == COLD_BUDGET - 100
    text = requests.get(f"{world.gateway}/metrics", timeout=15).text
    assert 'gateway_cold_lookups_refused_total{api_key="tiny",site="ondemand"}' in text


# ---------------------------------------------------------------- in a browser


@pytest.mark.parametrize(
    ("email", "plays"), [("ada@example.com", True), ("carol@example.com", False)]
)
def test_a_board_only_video_in_a_browser(
    catalogue_world: CatalogueWorld, tab: Page, email: str, plays: bool, shots: Path
) -> None:
    tab.goto(f"{catalogue_world.gateway}/embed/videos/{BOARD}")
    tab.fill("input[name=email]", email)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_load_state()
    tab.screenshot(path=str(shots / f"rule-board-{email.split('@')[0]}.png"), full_page=True)
    if plays:
        assert tab.url.startswith(catalogue_world.devsite.url + "/v.ihtml")
        assert tab.locator(f'[data-photo-id="{BOARD}"]').count() == 1
    else:
        assert tab.url.startswith(catalogue_world.gateway)
        assert "This video is not open to your account" in tab.content()
        assert tab.locator("#code").text_content() == "forbidden_by_rule"
