"""One logical gateway: state begun on instance A is finished (once) on instance B.

The worlds run twice, once on a single instance and once as two instances on one Redis
behind nginx, so every visitor-flow test already crosses instances on each hop. These tests
say it outright: each kind of shared state is started on A, used on B, and refused when
used again on A."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.cluster import INSTANCE_HEADER
from tests.formclient import FormClient
from tests.paywall_world import PaywallWorld
from tests.saml_forge import encode, request_id_of
from tests.saml_world import SamlWorld
from tests.sso_world import TEAM_PASSWORD, World
from tests.test_paywall import mailed_link, paid_subscriber, start_checkout
from tests.test_saml import valid
from tests.test_sso import sign_in_at_idp


@pytest.fixture()
def two(request: pytest.FixtureRequest) -> Any:
    """The fixture this test names (world, paywall or saml), as two instances."""
    name = next(n for n in ("world", "paywall", "saml") if n in request.fixturenames)
    found = request.getfixturevalue(name)
    assert len(found.served.instances) == 2
    found.reset()
    return found


def on(served: Any, instance: str, url: str) -> str:
    """``url`` (through the balancer) sent straight to instance "A" or "B"."""
    return url.replace(served.url, served.instances["AB".index(instance)], 1)


def gets_in(response: requests.Response) -> bool:
    return response.status_code == 302 and "redeem-token" in response.headers["Location"]


@pytest.mark.parametrize("world", ["two-instances"], indirect=True)
def test_an_oidc_login_started_on_a_completes_on_b_once(world: World, two: World) -> None:
    browser = FormClient()
    page = browser.get(on(two.served, "A", f"{two.gateway}/sso/intranet/login?return_url=/"))
    back = browser.follow_until(
        sign_in_at_idp(browser, page, "alice"), f"{two.gateway}/sso/oidc/corp/callback"
    )
    callback = back.headers["Location"]
    assert gets_in(browser.get(on(two.served, "B", callback), allow_redirects=False, timeout=15))
    replay = browser.get(
        on(two.served, "A", callback),
        allow_redirects=False,
        headers={"Accept": "application/json"},
        timeout=15,
    )
    assert replay.status_code == 400 and replay.json()["error"]["code"] == "state_replayed"
    assert len(two.calls("session/get-token")) == 1


@pytest.mark.parametrize("world", ["two-instances"], indirect=True)
def test_a_paywall_jwt_spent_on_a_is_spent_on_b(world: World, two: World) -> None:
    url = f"{two.gateway}/sso/portal/login?jwt={two.portal_token('ada@example.com')}"
    assert gets_in(requests.get(on(two.served, "A", url), allow_redirects=False, timeout=15))
    again = requests.get(on(two.served, "B", url), allow_redirects=False, timeout=15)
    assert not gets_in(again) and again.status_code >= 400
    assert len(two.calls("session/get-token")) == 1


@pytest.mark.parametrize("world", ["two-instances"], indirect=True)
def test_password_guesses_count_on_every_instance(world: World, two: World) -> None:
    browser = FormClient()
    statuses = []
    for attempt in range(7):
        instance = "AB"[attempt % 2]
        form = browser.get(on(two.served, instance, f"{two.gateway}/sso/team/login?return_url=/"))
        statuses.append(browser.submit(form, email="ghost@example.com", password="x").status_code)
    assert statuses == [401] * 5 + [429] * 2
    form = browser.get(on(two.served, "A", f"{two.gateway}/sso/team/login?return_url=/"))
    blocked = browser.submit(form, follow=False, email="ghost@example.com", password=TEAM_PASSWORD)
    assert blocked.status_code == 429


@pytest.mark.parametrize("paywall", ["two-instances"], indirect=True)
def test_an_email_link_sent_by_a_works_once_on_b(paywall: PaywallWorld, two: Any) -> None:
    email, _ = paid_subscriber(two)
    browser = FormClient()
    form = browser.get(
        on(two.served, "A", f"{two.gateway}/sso/shop/login?return_url=/video/1001&provider=mail")
    )
    assert "Check your inbox" in browser.submit(form, email=email).text
    link = mailed_link(two, email)
    confirm = browser.get(on(two.served, "B", link), timeout=15)
    assert gets_in(browser.submit(confirm, follow=False))
    confirm_again = browser.get(on(two.served, "A", link), timeout=15)
    assert browser.submit(confirm_again, follow=False).status_code == 400


@pytest.mark.parametrize("paywall", ["two-instances"], indirect=True)
def test_a_checkout_started_on_a_lands_on_b(paywall: PaywallWorld, two: Any) -> None:
    browser, session_id = start_checkout(two, "pays-on-a@example.com")
    two.stripe.pay(session_id)
    back = f"{two.gateway}/sso/stripe/gold/return?session_id={session_id}"
    assert gets_in(browser.get(on(two.served, "B", back), allow_redirects=False, timeout=15))
    stranger = FormClient().get(on(two.served, "A", back), allow_redirects=False, timeout=15)
    assert stranger.status_code == 200 and "Payment received" in stranger.text  # nobody in
    assert len(two.calls("session/get-token")) == 1


@pytest.mark.parametrize("saml", ["two-instances"], indirect=True)
def test_a_saml_request_from_a_is_answered_on_b_once(saml: SamlWorld, two: Any) -> None:
    browser = FormClient()
    to_idp = browser.get(
        on(two.served, "A", f"{two.gateway}/sso/forged/login?return_url=/"),
        allow_redirects=False,
        timeout=15,
    )
    location = to_idp.headers["Location"]
    relay = parse_qs(urlsplit(location).query)["RelayState"][0]
    answer = {
        "SAMLResponse": encode(valid(two, request_id_of(location), email="ada@corp.example")),
        "RelayState": relay,
    }
    acs = two.sp("forge")["acs"]
    first = browser.post(on(two.served, "B", acs), data=answer, allow_redirects=False, timeout=15)
    assert gets_in(first), first.text[:300]
    replay = browser.post(
        on(two.served, "A", acs),
        data=answer,
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=15,
    )
    assert replay.status_code == 400 and replay.json()["error"]["code"] == "saml_refused"
    assert len(two.calls("session/get-token")) == 1


@pytest.mark.parametrize("world", ["two-instances"], indirect=True)
def test_the_balancer_alternates_between_the_instances(world: World, two: World) -> None:
    """The premise of the two-instance worlds: consecutive requests change instance."""
    seen = [
        requests.get(f"{two.gateway}/healthz", timeout=5).headers[INSTANCE_HEADER] for _ in range(6)
    ]
    assert set(seen) == {"A", "B"}
    assert all(a != b for a, b in itertools.pairwise(seen)), seen
