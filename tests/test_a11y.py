"""Every page a person sees, in Chromium: a screenshot each (in $GATEWAY_SCREENSHOTS) and
axe-core run in the page, with no violation allowed. The console is signed in to like an
operator would, after some traffic, and its plots are looked at."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page

from tests.paywall_world import PaywallWorld
from tests.sso_world import TEAM_PASSWORD, World

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture()
def tab(chromium: Browser) -> Iterator[Page]:
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `make test-deps`")
    # The pages allow no script at all (CSP); only this test's axe-core may run in them.
    context = chromium.new_context(bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def submit(tab: Page, url: str, **fields: str) -> None:
    """Open the form at ``url``, fill the inputs with these ids, send it."""
    tab.goto(url)
    for field, value in fields.items():
        tab.fill(f"#{field}", value)
    tab.click("button[type=submit]")


def visit(tab: Page, shots: Path, name: str, url: str) -> None:
    """Open ``url``; it must be accessible (and is photographed as ``name``)."""
    tab.goto(url)
    accessible(tab, shots, name)


def accessible(page: Page, shots: Path, name: str) -> None:
    """A screenshot, then axe-core's WCAG 2.1 AA rules: no violation."""
    page.screenshot(path=shots / f"{name}.png", full_page=True)
    page.evaluate(AXE.read_text())
    found: Any = page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})).violations"
        ".map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target)}))"
    )
    assert found == [], f"{name}: " + json.dumps(found, indent=1)


@pytest.mark.parametrize("world", ["one-instance"], indirect=True)
def test_visitor_pages(world: World, tab: Page, shots: Path) -> None:
    world.reset()
    visit(tab, shots, "home", f"{world.gateway}/")
    visit(tab, shots, "chooser", f"{world.gateway}/sso/multi/login?return_url=/")
    team = f"{world.gateway}/sso/team/login?return_url=/"
    visit(tab, shots, "password-form", team)
    submit(tab, team, email="ada@example.com", password="wrong password")
    assert tab.get_attribute("#password", "aria-invalid") == "true"
    assert tab.get_attribute("#password", "aria-describedby") == "error"
    accessible(tab, shots, "password-form-error")
    staff_only = f"{world.gateway}/sso/staffonly/login?return_url=/"
    submit(tab, staff_only, email="ada@example.com", password=TEAM_PASSWORD)
    assert "cannot enter" in (tab.text_content("#title") or "")
    accessible(tab, shots, "refused")
    submit(tab, team, email="ada@example.com", password=TEAM_PASSWORD)
    tab.wait_for_url(world.devsite.url + "/")  # signed in as ada: a link for bo must ask
    tab.goto(
        f"{world.gateway}/sso/portal/login?return_url=/&jwt={world.portal_token('bo@example.com')}"
    )
    accessible(tab, shots, "continue-as")
    visit(tab, shots, "logout-confirm", f"{world.gateway}/sso/team/logout")
    tab.click("#sign-out")
    assert tab.text_content("#retry") == "Back to the videos"  # the way back to the site
    accessible(tab, shots, "signed-out")
    world.devsite.mode("down")
    submit(tab, team, email="ada@example.com", password=TEAM_PASSWORD)
    detail = tab.text_content("#detail") or ""
    assert "team" in detail and "session/get-token" in detail and "http_503" in detail
    accessible(tab, shots, "upstream-down")
    world.devsite.mode("ok")


@pytest.mark.parametrize("world", ["one-instance"], indirect=True)
def test_pages_speak_danish_when_asked(world: World, chromium: Browser, shots: Path) -> None:
    context = chromium.new_context(bypass_csp=True, locale="da-DK")
    page = context.new_page()
    page.goto(f"{world.gateway}/sso/team/login?return_url=/")
    assert page.text_content("h1") == "Log ind for at se med"
    assert page.get_attribute("html", "lang") == "da"
    accessible(page, shots, "password-form-da")
    context.close()


@pytest.mark.parametrize("paywall", ["one-instance"], indirect=True)
def test_paywall_pages(paywall: PaywallWorld, tab: Page, shots: Path) -> None:
    paywall.reset()
    shop = f"{paywall.gateway}/sso/shop/login?return_url=/video/1001&provider="
    visit(tab, shots, "subscribe", shop + "gold")
    visit(tab, shots, "email-form", shop + "mail")
    submit(tab, tab.url, email="reader@example.com")
    accessible(tab, shots, "email-sent")


def _sign_ins_to_plot(world: World, count: int = 3) -> None:
    for _ in range(count):
        browser = requests.Session()
        form = browser.get(f"{world.gateway}/sso/team/login?return_url=/", timeout=15).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        browser.post(
            f"{world.gateway}/sso/team/login",
            data={"csrf": csrf.group(1), "provider": "team", "email": "ada@example.com",
                  "password": TEAM_PASSWORD, "return_url": "/", "next": ""},
            allow_redirects=False, timeout=15,
        )  # fmt: skip


def _console_pages(tab: Page, shots: Path) -> None:
    """Each console page from its menu, at 1280 px, with what it must show."""
    assert tab.locator("svg.plot").count() >= 6
    granted = tab.locator("dt:text-is('Sign-ins granted') + dd").first.text_content()
    assert granted is not None and int(granted) >= 3
    assert tab.locator("svg.plot polyline, svg.plot circle").count() > 0
    accessible(tab, shots, "console-overview")
    tab.click("text=Audit events")
    tab.fill("#f-email", "ada@example.com")
    tab.click("text=Filter")
    assert tab.locator("td:text-is('sso_granted')").count() >= 3
    accessible(tab, shots, "console-audit")
    tab.click("text=Why can't they get in?")
    tab.fill("#w-email", "ada@example.com")
    tab.select_option("#w-site", "staffonly")
    tab.click("text=Explain")
    assert "group_not_allowed" in tab.content()
    accessible(tab, shots, "console-why")
    tab.click("text=Configuration")
    assert "********" in (tab.text_content("pre.config") or "")
    accessible(tab, shots, "console-config")
    tab.click("text=Sessions")
    tab.fill("#s-email", "ada@example.com")
    tab.click("text=Show sessions")
    assert tab.locator("#revoke-all").count() == 1
    accessible(tab, shots, "console-sessions")
    tab.click("text=Lockouts")
    accessible(tab, shots, "console-lockouts")


PHONE_PAGES = {
    "overview": "",
    "audit": "/audit",
    "why": "/why?email=ada@example.com&site=staffonly",
    "sessions": "/sessions?email=ada@example.com",
    "lockouts": "/lockouts",
    "config": "/config",
}


@pytest.mark.parametrize("world", ["one-instance"], indirect=True)
def test_the_console_in_a_browser(world: World, tab: Page, shots: Path) -> None:
    world.reset()
    _sign_ins_to_plot(world)
    tab.goto(f"{world.gateway}/admin")
    assert "Sign in to the operator console" in (tab.text_content("h1") or "")
    accessible(tab, shots, "console-sign-in")
    tab.fill("#email", "ada@example.com")
    tab.fill("#password", TEAM_PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{world.gateway}/admin")
    _console_pages(tab, shots)
    tab.set_viewport_size({"width": 390, "height": 844})  # a phone
    for name, path in PHONE_PAGES.items():
        visit(tab, shots, f"console-{name}-390", f"{world.gateway}/admin{path}")
    tab.set_viewport_size({"width": 1280, "height": 800})
    tab.click("#sign-out")
    assert "You are signed out" in (tab.text_content("h1") or "")
    accessible(tab, shots, "console-signed-out")
    tab.click("#retry")
    assert "Sign in to the operator console" in (tab.text_content("h1") or "")
