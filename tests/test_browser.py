"""Visitor flows in a real browser: Debian's Chromium driven by Playwright.

Screenshots of every page land in $GATEWAY_SCREENSHOTS (default: the test's tmp dir) so the
pages can be looked at.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.cluster import INSTANCE_HEADER
from tests.paywall_world import PaywallWorld
from tests.sso_world import TEAM_PASSWORD, World
from tests.test_paywall import paywall_token


@pytest.fixture()
def page(tab: Page, world: World) -> Page:
    world.reset()
    return tab  # a fresh browser profile per test: no cookies


def sign_in_at_provider(page: Page, login: str) -> None:
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.click("button[type=submit]")  # consent: "Continue"


def test_closed_site_to_provider_and_back(page: Page, world: World, shots: Path) -> None:
    hops: list[str] = []  # which gateway instance answered each request to the gateway
    page.on(
        "response",
        lambda r: (
            hops.append(r.headers.get(INSTANCE_HEADER.lower(), "-"))
            if r.url.startswith(world.gateway)
            else None
        ),
    )
    page.goto(world.devsite.url + "/video/1002")
    assert page.url.startswith(world.idp.issuer + "/interaction/")
    page.screenshot(path=shots / "provider-login.png")
    sign_in_at_provider(page, "alice")
    page.wait_for_url(world.devsite.url + "/video/1002")
    assert "Quarterly all-hands" in page.content()
    page.goto(world.devsite.url + "/")
    assert page.text_content("#welcome") == "Welcome, Alice Example"
    page.screenshot(path=shots / "welcome.png")
    if len(world.served.instances) > 1:  # login, callback: each hop on the other instance
        assert len(hops) >= 2 and set(hops) == {"A", "B"}, hops
        assert all(a != b for a, b in itertools.pairwise(hops)), hops


def test_denied_domain_page(page: Page, world: World, shots: Path) -> None:
    page.goto(world.devsite.url + "/")
    sign_in_at_provider(page, "bob")
    page.wait_for_selector("#title")
    assert page.text_content("#title") == "This account cannot enter"
    assert page.text_content("#code") == "domain_not_allowed"
    page.screenshot(path=shots / "denied.png")
    assert world.calls("session/get-token") == []


def test_cancel_at_the_provider(page: Page, world: World, shots: Path) -> None:
    page.goto(world.devsite.url + "/")
    page.click("text=[ Cancel ]")
    page.wait_for_selector("#title")
    assert page.text_content("#title") == "Sign-in cancelled"
    page.screenshot(path=shots / "cancelled.png")


def test_replayed_callback_in_the_browser(page: Page, world: World) -> None:
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/callback?" in r.url else None)
    page.goto(world.devsite.url + "/")
    sign_in_at_provider(page, "alice")
    page.wait_for_url(world.devsite.url + "/")
    response = page.goto(callbacks[0])
    assert response is not None and response.status == 400
    assert "already used" in page.text_content("#message")  # type: ignore[operator]


def test_static_form_chooser_and_outage_pages(page: Page, world: World, shots: Path) -> None:
    page.goto(f"{world.gateway}/sso/multi/login?return_url=/")
    page.screenshot(path=shots / "chooser.png")
    page.click("text=Sign in with your password")
    page.fill("#email", "ada@example.com")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    assert "do not match" in page.text_content("#error")  # type: ignore[operator]
    page.screenshot(path=shots / "login-error.png")
    world.devsite.mode("down")
    try:
        page.fill("#password", TEAM_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#title")
        assert page.text_content("#title") == "The video site is unavailable"
        page.screenshot(path=shots / "unavailable.png")
    finally:
        world.devsite.mode("ok")


def test_embed_link_signs_in_then_plays(page: Page, world: World, shots: Path) -> None:
    page.goto(f"{world.gateway}/embed/multi/1002")
    page.click("text=Sign in with your password")
    page.fill("#email", "ada@example.com")
    page.fill("#password", TEAM_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#player")
    assert page.url.startswith(world.devsite.url + "/v.ihtml?")
    assert page.get_attribute("#player", "data-photo-id") == "1002"
    page.screenshot(path=shots / "embed-player.png")
    assert world.calls("session/get-token") == []
    # Signed in now: a second link goes straight to the player.
    page.goto(f"{world.gateway}/embed/multi/1001")
    assert page.get_attribute("#player", "data-photo-id") == "1001"


def test_paying_visitor_reaches_the_welcome_page(
    tab: Page, paywall: PaywallWorld, shots: Path
) -> None:
    paywall.reset()
    tab.goto(paywall.devsite.url + "/")
    tab.screenshot(path=shots / "paywall-chooser.png")
    tab.click("text=Subscribe (gold)")
    tab.wait_for_selector("#subscribe")
    tab.screenshot(path=shots / "subscribe.png")
    tab.fill("#email", "buyer@example.com")
    tab.click("#subscribe")
    tab.wait_for_selector("#pay")  # the stand-in's hosted checkout page
    tab.click("#pay")
    tab.wait_for_selector("#welcome")
    assert tab.url == paywall.devsite.url + "/"
    assert tab.text_content("#email") == "Signed in as buyer@example.com (visitor)"
    tab.screenshot(path=shots / "paid-welcome.png")


def test_lapsed_subscription_page(tab: Page, paywall: PaywallWorld, shots: Path) -> None:
    from gateway.entitlements import Grant

    paywall.reset()
    paywall.entitlements.record(
        Grant("stripe:gold", "sub_lapsed_demo", "lapsed@example.com", "gold", "canceled", False)
    )
    token = paywall_token("lapsed@example.com")
    tab.goto(f"{paywall.gateway}/sso/paywalled/login?return_url=/&jwt={token}")
    assert tab.text_content("#title") == "Your subscription has lapsed"
    tab.screenshot(path=shots / "lapsed.png")


def test_payment_received_page_in_another_browser(
    tab: Page, paywall: PaywallWorld, shots: Path
) -> None:
    from tests.test_paywall import start_checkout

    paywall.reset()
    _, session_id = start_checkout(paywall, "elsewhere@example.com")
    paywall.stripe.pay(session_id)
    # ``tab`` is not the browser that started the checkout
    tab.goto(f"{paywall.gateway}/sso/stripe/gold/return?session_id={session_id}")
    assert tab.text_content("#title") == "Payment received"
    tab.screenshot(path=shots / "payment-received.png")


def test_saml_sign_in_through_simplesamlphp(tab: Page, saml: Any, shots: Path) -> None:
    """Closed site -> gateway -> the IdP's own login page -> back -> the site's welcome page."""
    saml.reset()
    tab.goto(saml.devsite.url + "/video/1002")
    assert tab.url.startswith(saml.idp.url + "/module.php/core/loginuserpass.php")
    tab.screenshot(path=shots / "saml-idp-login.png")
    tab.fill("input[name=username]", "alice")
    tab.fill("input[name=password]", "alice-pass")
    tab.click("button[type=submit], input[type=submit]")
    tab.wait_for_url(saml.devsite.url + "/video/1002")
    assert "Quarterly all-hands" in tab.content()
    tab.goto(saml.devsite.url + "/")
    assert tab.text_content("#welcome") == "Welcome, Alice Example"
    tab.screenshot(path=shots / "saml-welcome.png")


def test_ldap_sign_in_through_the_form(tab: Page, ldap: Any, shots: Path) -> None:
    """The gateway's own form against a real directory, to the site's welcome page."""
    ldap.reset()
    tab.goto(ldap.devsite.url + "/video/1002")
    assert tab.url.startswith(ldap.gateway + "/sso/intranet/login")
    assert tab.text_content("label[for=email]") == "Username or e-mail"
    tab.screenshot(path=shots / "ldap-form.png")
    tab.fill("#email", "ada")
    tab.fill("#password", "wrong")
    tab.click("button[type=submit]")
    assert "do not match" in tab.text_content("#error")
    assert tab.get_attribute("#password", "aria-invalid") == "true"
    tab.fill("#password", "ada-pass-0123")
    tab.click("button[type=submit]")
    tab.wait_for_url(ldap.devsite.url + "/video/1002")
    tab.goto(ldap.devsite.url + "/")
    assert tab.text_content("#welcome") == "Welcome, Ada Lovelace"
    tab.screenshot(path=shots / "ldap-welcome.png")
