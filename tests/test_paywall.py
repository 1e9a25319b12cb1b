"""Paywalls over real HTTP: Stripe (stand-in, real library, real signatures), paywall JWTs,
e-mail sign-in links through a real SMTP server, and the entitlements they leave behind."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from tests.formclient import FormClient
from tests.paywall_world import AUDIENCE, ISSUER, PAYWALL_SECRET, PaywallWorld
from tests.stripe_standin import OTHER_PRICE, PRICE


@pytest.fixture(autouse=True)
def _reset(paywall: PaywallWorld) -> None:
    paywall.reset()


def unique_email() -> str:
    return f"viewer-{uuid.uuid4().hex[:10]}@example.com"


# ---------------------------------------------------------------- Stripe checkout


def start_checkout(world: PaywallWorld, email: str = "") -> tuple[FormClient, str]:
    """Closed site -> gateway chooser -> subscribe page -> Checkout Session; the session id."""
    browser = FormClient()
    chooser = browser.get(world.devsite.url + "/video/1001", timeout=15)
    assert chooser.status_code == 200 and "provider=gold" in chooser.text, chooser.text[:300]
    subscribe = browser.get(
        f"{world.gateway}/sso/shop/login",
        params={"return_url": world.devsite.url + "/video/1001", "provider": "gold"},
        timeout=15,
    )
    assert subscribe.status_code == 200 and "Subscribe to watch" in subscribe.text
    to_stripe = browser.submit(subscribe, follow=False, email=email)
    assert to_stripe.status_code == 303, to_stripe.text[:300]
    location = to_stripe.headers["Location"]
    assert location.startswith(world.stripe_url + "/pay/cs_test_")
    return browser, location.rsplit("/", 1)[1]


def return_from_stripe(world: PaywallWorld, browser: FormClient, session_id: str) -> Any:
    return browser.get(
        f"{world.gateway}/sso/stripe/gold/return?session_id={session_id}",
        allow_redirects=False,
        timeout=15,
    )


def test_paying_visitor_lands_on_the_site(paywall: PaywallWorld) -> None:
    email = unique_email()
    browser, session_id = start_checkout(paywall, email)
    assert paywall.stripe.sessions[session_id]["customer_email"] == email
    assert paywall.stripe.sessions[session_id]["_price"] == PRICE
    paywall.stripe.pay(session_id)
    back = return_from_stripe(paywall, browser, session_id)
    assert back.status_code == 302, back.text[:400]
    assert back.headers["Location"].startswith(paywall.devsite.url + "/api/session/redeem-token")
    landed = browser.get(back.headers["Location"], timeout=15)
    assert landed.url == paywall.devsite.url + "/video/1001"
    assert email in browser.get(paywall.devsite.url + "/", timeout=15).text
    assert paywall.entitlements.standing(email, "gold") == "active"
    (call,) = paywall.calls("session/get-token")
    assert call["params"]["email"] == email


def test_unpaid_checkout_is_refused(paywall: PaywallWorld) -> None:
    browser, session_id = start_checkout(paywall)
    back = return_from_stripe(paywall, browser, session_id)
    assert back.status_code == 400 and "checkout_not_paid" in back.text
    assert paywall.calls("session/get-token") == []


def test_return_link_in_another_browser_grants_but_signs_nobody_in(paywall: PaywallWorld) -> None:
    email = unique_email()
    _, session_id = start_checkout(paywall, email)
    paywall.stripe.pay(session_id)
    stranger = FormClient()
    back = return_from_stripe(paywall, stranger, session_id)
    assert back.status_code == 200 and "Payment received" in back.text
    assert "gw_session" not in back.headers.get("Set-Cookie", "")
    assert paywall.calls("session/get-token") == []
    assert paywall.entitlements.standing(email, "gold") == "active"  # not lost either


@pytest.mark.parametrize("session_id", ["", "cs_", "nope", "cs_" + "a" * 300, "cs_x/../y"])
def test_bad_return_links(paywall: PaywallWorld, session_id: str) -> None:
    back = requests.get(
        f"{paywall.gateway}/sso/stripe/gold/return",
        params={"session_id": session_id},
        headers={"Accept": "application/json"},
        timeout=15,
    )
    assert back.status_code == 400 and back.json()["error"]["code"] == "invalid_checkout"


def test_unknown_checkout_session(paywall: PaywallWorld) -> None:
    back = requests.get(
        f"{paywall.gateway}/sso/stripe/gold/return?session_id=cs_test_doesnotexist",
        headers={"Accept": "application/json"},
        timeout=15,
    )
    assert back.status_code == 400 and back.json()["error"]["code"] == "invalid_checkout"


def test_stripe_down_at_checkout_is_502(paywall: PaywallWorld) -> None:
    browser = FormClient()
    page = browser.get(f"{paywall.gateway}/sso/shop/login?provider=gold", timeout=15)
    paywall.stripe.down = True
    response = browser.submit(page, follow=False)
    assert response.status_code == 502 and "payment service is unavailable" in response.text


def test_cancelled_checkout_page(paywall: PaywallWorld) -> None:
    browser, session_id = start_checkout(paywall)
    cancel = paywall.stripe.sessions[session_id]["cancel_url"]
    page = browser.get(cancel, timeout=15)
    assert page.status_code == 200 and "Payment cancelled" in page.text
    assert "/sso/shop/login" in page.text


# ---------------------------------------------------------------- Stripe webhooks


def paid_subscriber(world: PaywallWorld) -> tuple[str, str]:
    """A visitor who paid (recorded at return); their e-mail and subscription id."""
    email = unique_email()
    browser, session_id = start_checkout(world, email)
    session = world.stripe.pay(session_id)
    assert return_from_stripe(world, browser, session_id).status_code == 302
    return email, session["subscription"]


def subscribed_elsewhere(world: PaywallWorld, price: str, status: str) -> tuple[str, Any]:
    """A customer with a subscription made in Stripe itself (not through our checkout)."""
    email = unique_email()
    with world.stripe.lock:
        customer = {"id": f"cus_{uuid.uuid4().hex[:12]}", "object": "customer", "email": email}
        world.stripe.customers[customer["id"]] = customer
        return email, world.stripe.new_subscription(customer["id"], price, status)


def post_event(world: PaywallWorld, payload: bytes, signature: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return requests.post(
        f"{world.gateway}/webhooks/stripe", data=payload, headers=headers, timeout=15
    )


def send(world: PaywallWorld, kind: str, obj: dict[str, Any], event_id: str | None = None) -> Any:
    payload = world.stripe.event(kind, obj, event_id)
    return post_event(world, payload, world.stripe.sign(payload))


def sub_event(world: PaywallWorld, sub_id: str) -> dict[str, Any]:
    # What the event carries is not trusted: the gateway re-reads the subscription.
    return {"id": sub_id, "object": "subscription", "status": "active"}


def test_cancelled_subscription_is_refused_on_the_next_login(paywall: PaywallWorld) -> None:
    email, sub_id = paid_subscriber(paywall)
    paywall.stripe.set_status(sub_id, "canceled")
    assert send(paywall, "customer.subscription.deleted", sub_event(paywall, sub_id)).ok
    assert paywall.entitlements.standing(email, "gold") == "lapsed"
    token = paywall_token(email)  # any identity: the entitlement is looked up by e-mail
    paywall.devsite.reset()
    refused = requests.get(
        f"{paywall.gateway}/sso/paywalled/login",
        params={"jwt": token},
        headers={"Accept": "text/html"},
        timeout=15,
    )
    assert refused.status_code == 403 and "Your subscription has lapsed" in refused.text
    assert paywall.calls("session/get-token") == []


def test_a_cancelled_checkout_closes_its_own_session(paywall: PaywallWorld) -> None:
    """A session opened by a checkout holds that checkout's grant, asked about on every use:
    once the subscription is cancelled, the gateway session no longer opens the site."""
    email = unique_email()
    browser, session_id = start_checkout(paywall, email)
    sub_id = paywall.stripe.pay(session_id)["subscription"]
    assert return_from_stripe(paywall, browser, session_id).status_code == 302
    again = {"return_url": paywall.devsite.url + "/video/1001"}
    login = f"{paywall.gateway}/sso/shop/login"
    kept = browser.get(login, params=again, allow_redirects=False, timeout=15)
    assert kept.status_code == 302 and "/api/session/redeem-token" in kept.headers["Location"]
    account = browser.get(f"{paywall.gateway}/account/shop", timeout=15)
    assert account.status_code == 200 and "active" in account.text.lower()
    paywall.stripe.set_status(sub_id, "canceled")
    assert send(paywall, "customer.subscription.deleted", sub_event(paywall, sub_id)).ok
    paywall.devsite.reset()
    closed = browser.get(login, params=again, allow_redirects=False, timeout=15)
    assert closed.status_code != 302, closed.headers.get("Location")
    assert paywall.calls("session/get-token") == []


def test_replayed_webhook_changes_nothing(paywall: PaywallWorld) -> None:
    email, sub_id = paid_subscriber(paywall)
    event_id = f"evt_{uuid.uuid4().hex}"
    paywall.stripe.set_status(sub_id, "canceled")
    payload = paywall.stripe.event(
        "customer.subscription.deleted", sub_event(paywall, sub_id), event_id
    )
    assert post_event(paywall, payload, paywall.stripe.sign(payload)).json() == {"received": True}
    assert paywall.entitlements.standing(email, "gold") == "lapsed"
    # The visitor resubscribes; a replay of the old event must not undo that.
    paywall.stripe.set_status(sub_id, "active")
    assert send(paywall, "customer.subscription.updated", sub_event(paywall, sub_id)).ok
    assert paywall.entitlements.standing(email, "gold") == "active"
    again = post_event(paywall, payload, paywall.stripe.sign(payload))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert paywall.entitlements.standing(email, "gold") == "active"


def test_out_of_order_events_follow_stripes_current_state(paywall: PaywallWorld) -> None:
    email, sub_id = paid_subscriber(paywall)
    paywall.stripe.set_status(sub_id, "canceled")
    # The older "updated: active" event arrives after the cancellation happened.
    assert send(paywall, "customer.subscription.updated", sub_event(paywall, sub_id)).ok
    assert paywall.entitlements.standing(email, "gold") == "lapsed"


def test_webhook_before_the_return_then_the_return(paywall: PaywallWorld) -> None:
    email = unique_email()
    browser, session_id = start_checkout(paywall, email)
    paywall.stripe.pay(session_id)
    completed = {"id": session_id, "object": "checkout.session"}
    assert send(paywall, "checkout.session.completed", completed).ok
    assert paywall.entitlements.standing(email, "gold") == "active"
    assert return_from_stripe(paywall, browser, session_id).status_code == 302


def test_past_due_keeps_access_for_the_grace_period(paywall: PaywallWorld) -> None:
    email, sub_id = paid_subscriber(paywall)
    paywall.stripe.set_status(sub_id, "past_due", period_end=int(time.time()) - 86400)
    invoice = {"id": "in_1", "object": "invoice", "subscription": sub_id}
    assert send(paywall, "invoice.payment_failed", invoice).ok
    assert paywall.entitlements.standing(email, "gold") == "active"  # 1 day into 3 days' grace
    paywall.stripe.set_status(sub_id, "past_due", period_end=int(time.time()) - 4 * 86400)
    assert send(paywall, "customer.subscription.updated", sub_event(paywall, sub_id)).ok
    assert paywall.entitlements.standing(email, "gold") == "lapsed"


def test_subscriptions_for_other_prices_grant_nothing(paywall: PaywallWorld) -> None:
    email, sub = subscribed_elsewhere(paywall, OTHER_PRICE, "active")
    assert send(paywall, "customer.subscription.created", sub_event(paywall, sub["id"])).ok
    assert paywall.entitlements.standing(email, "gold") == "none"


def test_a_subscription_made_elsewhere_grants(paywall: PaywallWorld) -> None:
    email, sub = subscribed_elsewhere(paywall, PRICE, "trialing")
    assert send(paywall, "customer.subscription.created", sub_event(paywall, sub["id"])).ok
    assert paywall.entitlements.standing(email, "gold") == "active"


@pytest.mark.parametrize("case", ["missing", "garbage", "tampered", "stale", "wrong_secret"])
def test_forged_webhooks_are_400(paywall: PaywallWorld, case: str) -> None:
    email, sub = subscribed_elsewhere(paywall, PRICE, "active")
    payload = paywall.stripe.event("customer.subscription.created", sub_event(paywall, sub["id"]))
    now = int(time.time())
    signature: str | None = {
        "missing": None,
        "garbage": "t=abc,v1=zzz",
        "tampered": paywall.stripe.sign(payload.replace(b"subscription", b"Subscription", 1)),
        "stale": paywall.stripe.sign(payload, timestamp=now - 301),
        "wrong_secret": paywall.stripe.sign(payload, secret="whsec_someone_else"),
    }[case]
    before = len(paywall.stripe.calls)
    response = post_event(paywall, payload, signature)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_signature"
    assert paywall.entitlements.standing(email, "gold") == "none"
    assert paywall.stripe.calls[before:] == []  # refused before anything was read


def test_webhook_while_stripe_is_down_is_retried(paywall: PaywallWorld) -> None:
    email, sub_id = paid_subscriber(paywall)
    paywall.stripe.set_status(sub_id, "canceled")
    event_id = f"evt_{uuid.uuid4().hex}"
    payload = paywall.stripe.event(
        "customer.subscription.deleted", sub_event(paywall, sub_id), event_id
    )
    paywall.stripe.down = True
    assert post_event(paywall, payload, paywall.stripe.sign(payload)).status_code == 502
    assert paywall.entitlements.standing(email, "gold") == "active"
    paywall.stripe.down = False
    retry = post_event(paywall, payload, paywall.stripe.sign(payload))
    assert retry.json() == {"received": True}
    assert paywall.entitlements.standing(email, "gold") == "lapsed"


# ---------------------------------------------------------------- paywall JWTs


def paywall_token(
    email: str | None, key: Any = None, header: dict[str, Any] | None = None, **claims: Any
) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now + 120,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "email": email,
        "name": "Paywall Visitor",
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    header = header or {"alg": "HS256"}
    key = key or OctKey.import_key(PAYWALL_SECRET)
    return jwt.encode(header, body, key, algorithms=[header["alg"]])


def jwt_login(world: PaywallWorld, token: str, site: str = "paywalled") -> requests.Response:
    return requests.get(
        f"{world.gateway}/sso/{site}/login",
        params={"return_url": "/video/1001", "jwt": token},
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=15,
    )


def test_paywall_token_with_the_entitlement_signs_in(paywall: PaywallWorld) -> None:
    email = unique_email()
    response = jwt_login(paywall, paywall_token(email, entitlements=["gold"]))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(
        paywall.devsite.url + "/api/session/redeem-token"
    )
    (call,) = paywall.calls("session/get-token")
    assert call["params"]["email"] == email and call["params"]["full_name"] == "Paywall Visitor"


def test_paywall_token_is_single_use(paywall: PaywallWorld) -> None:
    token = paywall_token(unique_email(), entitlements="gold")
    assert jwt_login(paywall, token).status_code == 302
    again = jwt_login(paywall, token)
    assert again.status_code == 401 and again.json()["error"]["code"] == "paywall_token_replayed"
    assert len(paywall.calls("session/get-token")) == 1


def test_paywall_token_without_the_entitlement(paywall: PaywallWorld) -> None:
    for claims in ({}, {"entitlements": ["silver"]}, {"entitlements": None}):
        response = jwt_login(paywall, paywall_token(unique_email(), **claims))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "entitlement_required"
    # A site without require_entitlement lets the same kind of token in.
    assert jwt_login(paywall, paywall_token(unique_email()), site="open").status_code == 302
    assert len(paywall.calls("session/get-token")) == 1


def test_stored_entitlement_meets_the_requirement(paywall: PaywallWorld) -> None:
    email, _ = paid_subscriber(paywall)
    paywall.devsite.reset()
    assert jwt_login(paywall, paywall_token(email)).status_code == 302


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "not_yet",
        "issued_in_future",
        "wrong_issuer",
        "wrong_audience",
        "no_exp",
        "no_jti",
        "wrong_secret",
        "alg_none",
        "hs512",
        "too_long_lived",
        "garbage",
        "no_email",
    ],
)
def test_forged_or_broken_paywall_tokens(paywall: PaywallWorld, case: str) -> None:
    now = int(time.time())
    email = unique_email()
    make = {
        "expired": lambda: paywall_token(email, entitlements=["gold"], exp=now - 31),
        "not_yet": lambda: paywall_token(email, entitlements=["gold"], nbf=now + 120),
        "issued_in_future": lambda: paywall_token(email, entitlements=["gold"], iat=now + 120),
        "wrong_issuer": lambda: paywall_token(email, entitlements=["gold"], iss="https://evil"),
        "wrong_audience": lambda: paywall_token(email, entitlements=["gold"], aud="other"),
        "no_exp": lambda: paywall_token(email, entitlements=["gold"], exp=None),
        "no_jti": lambda: paywall_token(email, entitlements=["gold"], jti=None),
        "wrong_secret": lambda: paywall_token(
            email, OctKey.import_key("another-secret-0123456789abcdefghij"), entitlements=["gold"]
        ),
        "alg_none": lambda: _unsigned(email),
        "hs512": lambda: paywall_token(email, header={"alg": "HS512"}, entitlements=["gold"]),
        "too_long_lived": lambda: paywall_token(email, entitlements=["gold"], exp=now + 7 * 86400),
        "garbage": lambda: "not.a.jwt",
        "no_email": lambda: paywall_token(None, entitlements=["gold"]),
    }[case]
    response = jwt_login(paywall, make())
    assert response.status_code == 401, response.text
    assert paywall.calls("session/get-token") == []


def _part(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hs256_with_raw_secret(secret: bytes, email: str) -> str:
    """The classic algorithm-confusion forgery: HS256 keyed with the RSA public key's PEM."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 60, "jti": uuid.uuid4().hex}
    head = _part({"alg": "HS256", "kid": "k1"}) + "." + _part({**claims, "email": email})
    signature = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    return head + "." + _part(signature)


def _unsigned(email: str) -> str:
    part = _part

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 60, "jti": uuid.uuid4().hex}
    return f"{part({'alg': 'none'})}.{part({**claims, 'email': email, 'entitlements': ['gold']})}."


def test_small_clock_skew_is_tolerated(paywall: PaywallWorld) -> None:
    token = paywall_token(unique_email(), entitlements=["gold"], exp=int(time.time()) - 10)
    assert jwt_login(paywall, token).status_code == 302


def test_rs256_tokens_from_a_jwks_with_rotation(
    paywall: PaywallWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = paywall.jwks.keys[0]
    token = paywall_token(unique_email(), first, {"alg": "RS256", "kid": "k1"})
    assert jwt_login(paywall, token, site="rsa").status_code == 302
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    paywall.jwks.keys.append(rotated)
    monkeypatch.setattr("gateway.identity.jwks.REFETCH_INTERVAL", 0.0)  # instead of waiting 5 s
    token = paywall_token(unique_email(), rotated, {"alg": "RS256", "kid": "k2"})
    assert jwt_login(paywall, token, site="rsa").status_code == 302
    # The RS256 identity must not accept an HS256 token signed with anything public.
    confused = _hs256_with_raw_secret(first.as_pem(private=False), unique_email())
    assert jwt_login(paywall, confused, site="rsa").status_code == 401
    unknown = paywall_token(
        unique_email(),
        RSAKey.generate_key(2048, parameters={"kid": "k9"}),
        {"alg": "RS256", "kid": "k9"},
    )
    assert jwt_login(paywall, unknown, site="rsa").status_code == 401


# ---------------------------------------------------------------- e-mail sign-in links


def request_link(world: PaywallWorld, email: str) -> tuple[FormClient, requests.Response]:
    browser = FormClient()
    form = browser.get(
        f"{world.gateway}/sso/shop/login",
        params={"return_url": "/video/1001", "provider": "mail"},
        timeout=15,
    )
    assert form.status_code == 200 and 'name="csrf"' in form.text
    sent = browser.submit(form, email=email)
    return browser, sent


def mailed_link(world: PaywallWorld, email: str) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with world.mail.lock:
            found = [m for m in world.mail.messages if m["To"] == email]
        if found:
            body = found[-1].get_payload(decode=True).decode()  # type: ignore[union-attr]
            match = re.search(r"http://\S+/sso/email/mail/verify\?token=\S+", body)
            assert match, body
            return match.group(0)
        time.sleep(0.05)
    raise AssertionError(f"no mail to {email}")


def test_a_subscriber_signed_in_by_email_manages_their_own_subscription(
    paywall: PaywallWorld,
) -> None:
    """No checkout in this browser, so no customer in the session: the portal opens for the
    customer behind the e-mail's Stripe grant, and for nobody else's."""
    email, sub_id = paid_subscriber(paywall)
    other_email, other_sub = paid_subscriber(paywall)
    _browser, _sent = request_link(paywall, email)
    reader = FormClient()
    assert reader.submit(reader.get(mailed_link(paywall, email), timeout=15), follow=False).ok
    account = reader.get(f"{paywall.gateway}/account/shop", timeout=15)
    assert email in account.text and "Manage subscription" in account.text
    before = len(paywall.stripe.portals)
    opened = reader.submit(account, follow=False)
    assert opened.status_code == 303 and "/portal/" in opened.headers["Location"]
    portal = paywall.stripe.portals[before]
    assert portal["customer"] == paywall.stripe.subscriptions[sub_id]["customer"]
    assert portal["customer"] != paywall.stripe.subscriptions[other_sub]["customer"]
    # A visitor vouched for by the publisher's JWT (no Stripe customer of their own): no door.
    jwt_visitor = FormClient()
    token = paywall_token(other_email)
    jwt_visitor.get(f"{paywall.gateway}/sso/paywalled/login?return_url=/&jwt={token}", timeout=15)
    page = jwt_visitor.get(f"{paywall.gateway}/account/paywalled", timeout=15)
    assert page.status_code == 200 and "Manage subscription" not in page.text


def test_two_customers_behind_one_address_open_no_portal(paywall: PaywallWorld) -> None:
    """Stripe does not check the address a payer types: when a stranger paid with the owner's
    address too, the account page cannot tell which customer is the owner's and opens none."""
    email, _ = paid_subscriber(paywall)
    stranger = FormClient()
    form = stranger.get(
        f"{paywall.gateway}/sso/shop/login", params={"return_url": "/", "provider": "gold"},
        timeout=15,
    )  # fmt: skip
    earlier = set(paywall.stripe.sessions)  # the stand-in outlives one test: earlier checkouts
    stranger.submit(form, follow=False, email=email)
    (session,) = [s for key, s in paywall.stripe.sessions.items() if key not in earlier]
    paywall.stripe.pay(session["id"], email=email)
    back = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
    assert stranger.get(back, allow_redirects=False, timeout=15).status_code == 302
    _browser, _sent = request_link(paywall, email)
    owner = FormClient()
    assert owner.submit(owner.get(mailed_link(paywall, email), timeout=15), follow=False).ok
    account = owner.get(f"{paywall.gateway}/account/shop", timeout=15)
    before = len(paywall.stripe.portals)
    refused = owner.submit(account, follow=False)
    assert refused.status_code == 403 and "ambiguous_customer" in refused.text, refused.text
    assert len(paywall.stripe.portals) == before  # no portal for anybody


def test_returning_subscriber_signs_in_by_email(paywall: PaywallWorld) -> None:
    email, _ = paid_subscriber(paywall)
    paywall.devsite.reset()
    _browser, sent = request_link(paywall, email)
    assert sent.status_code == 200 and "Check your inbox" in sent.text
    link = mailed_link(paywall, email)
    other = FormClient()  # the link works in any browser (a phone, another profile)
    confirm = other.get(link, timeout=15)
    assert confirm.status_code == 200 and "Continue signing in" in confirm.text
    assert other.get(link, timeout=15).status_code == 200  # a mail scanner's fetch uses nothing
    done = other.submit(confirm, follow=False)
    assert done.status_code == 302
    assert done.headers["Location"].startswith(paywall.devsite.url + "/api/session/redeem-token")
    assert other.submit(confirm, follow=False).status_code == 400  # single use
    (call,) = paywall.calls("session/get-token")
    assert call["params"]["email"] == email


def test_email_link_for_someone_without_a_subscription(paywall: PaywallWorld) -> None:
    email = unique_email()
    _, sent = request_link(paywall, email)
    assert "Check your inbox" in sent.text  # the same answer: no hint who subscribes
    browser = FormClient()
    confirm = browser.get(mailed_link(paywall, email), timeout=15)
    refused = browser.submit(confirm)
    assert refused.status_code == 403 and "Subscription needed" in refused.text
    assert "provider=gold" in refused.text  # a way to subscribe
    assert paywall.calls("session/get-token") == []


def test_tampered_email_link(paywall: PaywallWorld) -> None:
    email = unique_email()
    request_link(paywall, email)
    link = mailed_link(paywall, email)
    token = parse_qs(urlsplit(link).query)["token"][0]
    forged = link.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    response = requests.get(forged, headers={"Accept": "application/json"}, timeout=15)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_sign_in_link"


def test_email_link_requests_are_rate_limited(paywall: PaywallWorld) -> None:
    email = unique_email()
    statuses = [request_link(paywall, email)[1].status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429


def test_smtp_down_is_502(devsite: Any) -> None:
    """The mail server refuses connections: the visitor is told, no link is pretended sent."""
    from gateway import create_app
    from tests.helpers import free_port, make_settings, site_table

    settings = make_settings(
        {"shop": site_table(devsite.url, identity="mail")},
        identity={
            "mail": {
                "type": "email",
                "smtp_host": "127.0.0.1",
                "smtp_port": free_port(),  # nothing listens
                "starttls": False,
                "sender": "videos@example.com",
            }
        },
    )
    client = create_app(settings).test_client()
    form = client.get("/sso/shop/login?return_url=/").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    sent = client.post(
        "/sso/shop/login",
        data={"csrf": csrf.group(1), "provider": "mail", "email": unique_email()},
        headers={"Accept": "text/html"},
    )
    assert sent.status_code == 502 and "could not be sent" in sent.get_data(as_text=True)


# ---------------------------------------------------------------- login CSRF on paywall forms


def test_an_email_link_cannot_be_posted_from_another_page(paywall: PaywallWorld) -> None:
    """Attack: the attacker requests a link for their own address and makes the victim's
    browser post it (the victim then watches as the attacker). The POST needs the form token
    of the confirm page that browser opened."""
    email = unique_email()
    request_link(paywall, email)
    token = parse_qs(urlsplit(mailed_link(paywall, email)).query)["token"][0]
    victim = requests.Session()
    forged = victim.post(
        f"{paywall.gateway}/sso/email/mail/verify",
        data={"token": token},
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=15,
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_form"
    assert "gw_session" not in forged.headers.get("Set-Cookie", "")
    assert paywall.calls("session/get-token") == []


def test_the_subscribe_form_needs_its_form_token(paywall: PaywallWorld) -> None:
    forged = requests.post(
        f"{paywall.gateway}/sso/shop/login",
        data={"provider": "gold", "return_url": "/", "email": "victim@example.com"},
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=15,
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_form"
    assert paywall.stripe.sessions == {} or all(
        s.get("customer_email") != "victim@example.com" for s in paywall.stripe.sessions.values()
    )
