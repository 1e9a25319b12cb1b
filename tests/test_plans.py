"""A choice of plans on the subscribe page (amounts and intervals read from Stripe, written in
the page's language), the checkout made only for an offered price, with the trial and the
promotion-code field when configured, and the subscriber on the site after paying."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import create_app
from tests.formclient import FormClient
from tests.helpers import Devsite, LiveServer, free_port, make_settings, site_table
from tests.stripe_standin import SECRET_KEY, WEBHOOK_SECRET, StripeStandin


@pytest.fixture()
def shop(devsite: Devsite, tmp_path: Path) -> Iterator[dict[str, Any]]:
    stripe = StripeStandin()
    stripe_server = LiveServer(stripe.app)
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    settings = make_settings(
        {"shop": site_table(devsite.url, identity="pay", require_entitlement="gold")},
        gateway={"public_url": gateway},
        store={"database_url": f"sqlite:///{tmp_path / 'entitlements.db'}"},
        identity={
            "pay": {
                "type": "stripe",
                "secret_key": SECRET_KEY,
                "webhook_secret": WEBHOOK_SECRET,
                "prices": ["price_month", "price_year"],
                "product": "gold",
                "trial_days": 14,
                "allow_promotion_codes": True,
                "portal": True,
                "api_base": stripe_server.url,
            }
        },
    )
    app = create_app(settings)
    server = LiveServer(app, port)
    yield {"gateway": gateway, "stripe": stripe, "app": app}
    server.stop()
    stripe_server.stop()
    app.extensions["gateway.runtime"].entitlements.dispose()


def _login_url(shop: dict[str, Any], devsite: Devsite) -> str:
    """Where the closed site sends a stranger: the shop's sign-in (the plans)."""
    return f"{shop['gateway']}/sso/shop/login?return_url={devsite.url}/"


def test_plans_are_offered_and_the_chosen_one_is_bought(
    shop: dict[str, Any], devsite: Devsite
) -> None:
    stripe: StripeStandin = shop["stripe"]
    browser, login = FormClient(), _login_url(shop, devsite)
    page = browser.get(login, timeout=15)
    assert page.status_code == 200
    assert "99.00 DKK" in page.text and "per month" in page.text
    assert "990.00 DKK" in page.text and "per year" in page.text
    assert len(re.findall(r'type="radio" name="price"', page.text)) == 2
    danish = browser.get(login, headers={"Accept-Language": "da"}, timeout=15).text
    assert "99,00 DKK" in danish and "pr. måned" in danish

    stripe.calls.clear()
    forged = browser.submit(page, follow=False, price="price_someone_else")
    assert forged.status_code == 400
    assert not [c for c in stripe.calls if c.startswith("POST /v1/checkout")]

    chosen = browser.submit(page, follow=False, price="price_year")
    assert chosen.status_code == 303
    (session,) = stripe.sessions.values()
    assert session["_price"] == "price_year"
    assert str(session["_trial_days"]) == "14" and str(session["_promotion_codes"]) in (
        "True",
        "true",
    )
    paid = stripe.pay(session["id"], email="reader@example.com")
    back = browser.get(paid["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]),
                       allow_redirects=False, timeout=15)  # fmt: skip
    assert back.status_code == 302 and "redeem-token" in back.headers["Location"]


def test_the_account_page_opens_the_portal_for_the_subscribers_own_customer(
    shop: dict[str, Any], devsite: Devsite
) -> None:
    stripe: StripeStandin = shop["stripe"]
    browser = FormClient()
    browser.submit(
        browser.get(_login_url(shop, devsite), timeout=15), follow=False, price="price_month"
    )
    (session,) = stripe.sessions.values()
    paid = stripe.pay(session["id"], email="reader@example.com")
    browser.get(paid["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]),
                allow_redirects=False, timeout=15)  # fmt: skip
    account = browser.get(f"{shop['gateway']}/account/shop", timeout=15)
    assert account.status_code == 200 and "reader@example.com" in account.text
    assert "Manage subscription" in account.text and "active" in account.text
    opened = browser.submit(account, follow=False)
    assert opened.status_code == 303 and "/portal/" in opened.headers["Location"]
    (portal,) = stripe.portals
    assert portal["customer"] == paid["customer"]
    assert portal["return_url"] == f"{shop['gateway']}/account/shop"

    stranger = FormClient()
    refused = stranger.post(f"{shop['gateway']}/account/shop", data={"csrf": "x"}, timeout=15)
    assert refused.status_code == 403 and len(stripe.portals) == 1
    away = stranger.get(f"{shop['gateway']}/account/shop", allow_redirects=False, timeout=15)
    assert away.status_code == 303 and "/sso/shop/login" in away.headers["Location"]


def test_choose_the_yearly_plan_pay_and_manage_it_in_chromium(
    shop: dict[str, Any], devsite: Devsite, chromium: Any, shots: Any
) -> None:
    """A reader in a real browser: the plans page (axe-clean), the yearly plan, Stripe's
    (stand-in) payment, the site, then the account page (axe-clean) and the portal."""
    from tests.test_a11y import AXE, accessible

    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `make test-deps`")
    context = chromium.new_context(bypass_csp=True)
    tab = context.new_page()
    try:
        tab.goto(f"{shop['gateway']}/sso/shop/login?return_url={devsite.url}/")
        accessible(tab, shots, "subscribe-plans")
        tab.check("#plan-2")  # yearly
        tab.click("#subscribe")
        tab.wait_for_selector("#pay")
        tab.click("#pay")
        tab.wait_for_url(f"{devsite.url}/**")
        assert "Paying Visitor" in tab.content() or "payer@example.com" in tab.content()
        (session,) = shop["stripe"].sessions.values()
        assert session["_price"] == "price_year"
        tab.goto(f"{shop['gateway']}/account/shop")
        accessible(tab, shots, "account")
        tab.click("#manage")
        tab.wait_for_selector("#return")
        assert "Manage the subscription of cus_" in tab.content()
        tab.click("#return")
        tab.wait_for_url(f"{shop['gateway']}/account/shop")
    finally:
        context.close()
