"""``max_sessions_per_person``: a sign-in beyond N live sessions of one person on a site signs
their oldest out on every instance, that device is told why (with a way back in), and nobody
else's sessions are touched."""

from __future__ import annotations

import requests
from flask.testing import FlaskClient

from gateway import create_app
from tests.helpers import Devsite, make_settings, records_of, site_table


def _app(devsite: Devsite) -> FlaskClient:
    site = site_table(devsite.url, identity="proxy", max_sessions_per_person=2)
    return create_app(
        make_settings(
            {"news": site},
            gateway={"trusted_proxies": ["127.0.0.1/32"]},
            identity={"proxy": {"type": "header", "email_header": "X-Email"}},
        )
    ).test_client()


def _device(app: FlaskClient, devsite: Devsite, email: str) -> FlaskClient:
    device = app.application.test_client()
    answer = device.get(f"/sso/news/login?return_url={devsite.url}/", headers={"X-Email": email})
    assert answer.status_code == 302
    return device


def test_a_third_device_signs_the_oldest_out(devsite: Devsite) -> None:
    app = _app(devsite)
    first, second = (
        _device(app, devsite, "ada@example.com"),
        _device(app, devsite, "ada@example.com"),
    )
    other = _device(app, devsite, "bob@example.com")
    for device in (first, second, other):
        assert device.get("/embed/news/1001").status_code == 302
    with records_of("gateway.audit") as audited:
        third = _device(app, devsite, "ada@example.com")
    (limited,) = [r.__dict__ for r in audited if r.getMessage() == "sessions_limited"]
    assert limited["signed_out"] == 1 and limited["limit"] == 2
    told = first.get("/embed/news/1001", headers={"Accept": "text/html", "Accept-Language": "da"})
    page = told.get_data(as_text=True)
    assert told.status_code == 403 and "Du er blevet logget ud her" in page
    assert "/sso/news/login" in page  # a way to sign in again
    again = first.get("/embed/news/1001")
    assert again.status_code == 302 and "/sso/news/login" in again.headers["Location"]  # told once
    for device in (second, third, other):  # the newer two, and nobody else's
        assert device.get("/embed/news/1001").status_code == 302
    assert requests.get(devsite.url + "/_devsite/calls", timeout=5).status_code == 200


def test_a_busy_device_never_hides_the_others_from_the_limit() -> None:
    """'Last seen' updates have keys of their own: a device refreshed a hundred times does not
    push the person's other sign-ins out of the index the limit counts."""
    from gateway.identity.base import Identity
    from gateway.sessions import SessionCodec, Sessions
    from gateway.store import MemoryStore

    sessions = Sessions(SessionCodec(["k" * 32], 3600, 86400), MemoryStore(), sites=["news"])
    ada = Identity("ada@example.com", provider="proxy")
    busy, quiet = sessions.new(ada), sessions.new(ada)
    sessions.note(busy, site="news")
    sessions.note(quiet, site="news")
    for _ in range(120):
        sessions.seen(busy, ip="192.0.2.1")
    listed = {e["id"]: e for e in sessions.of_person("ada@example.com")}
    assert set(listed) == {busy.id, quiet.id} and listed[busy.id]["ip"] == "192.0.2.1"
    newest = sessions.new(ada)
    sessions.note(newest, site="news")
    assert sessions.limit_devices(newest, "news", 2) == 1  # the oldest of the two others
    assert {e["id"] for e in sessions.of_person("ada@example.com")} == {quiet.id, newest.id}


def test_an_address_typed_at_a_checkout_signs_nobody_else_out() -> None:
    """A payer who types someone's address at Stripe's checkout is that address only for what
    they bought: their sign-ins count against their own, never the owner's sessions."""
    from gateway.identity.base import Identity
    from gateway.sessions import SessionCodec, Sessions
    from gateway.store import MemoryStore

    sessions = Sessions(SessionCodec(["k" * 32], 3600, 86400), MemoryStore(), sites=["news"])
    owner = sessions.new(Identity("editor@news.example", provider="staff"))
    sessions.note(owner, site="news")
    payer = Identity("editor@news.example", provider="pay", email_proven=False)
    first, second = sessions.new(payer), sessions.new(payer)
    sessions.note(first, site="news")
    sessions.note(second, site="news")
    assert sessions.limit_devices(second, "news", 1) == 1  # the payer's own first session
    live = {e["id"] for e in sessions.of_person("editor@news.example")}
    assert live == {owner.id, second.id}
    again = sessions.new(Identity("editor@news.example", provider="staff"))
    sessions.note(again, site="news")
    assert sessions.limit_devices(again, "news", 1) == 1  # the owner's older one, only
    assert {e["id"] for e in sessions.of_person("editor@news.example")} == {second.id, again.id}


def test_sign_ins_on_another_site_never_hide_a_sites_sessions() -> None:
    from gateway.identity.base import Identity
    from gateway.sessions import SessionCodec, Sessions
    from gateway.store import MemoryStore

    codec = SessionCodec(["k" * 32], 3600, 86400)
    sessions = Sessions(codec, MemoryStore(), sites=["news", "other"])
    ada = Identity("ada@example.com", provider="proxy")
    first = sessions.new(ada)
    sessions.note(first, site="news")
    for _ in range(60):  # more than a person's index keeps
        sessions.note(sessions.new(ada), site="other")
    second = sessions.new(ada)
    sessions.note(second, site="news")
    assert sessions.limit_devices(second, "news", 1) == 1  # the first news session
    assert first.id not in {e["id"] for e in sessions.of_person("ada@example.com")}
