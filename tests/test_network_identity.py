"""Institutional access by network range (identity type ``network``): a visitor whose address
(as the trusted proxies reveal it) is in the campus ranges enters as the library, IPv4 and
IPv6, with its entitlements; one from elsewhere does not, and a forwarded address from an
untrusted peer counts for nothing. The audit line names the range that matched."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway import create_app
from gateway.loader import parse_settings
from gateway.passwords import hash_password
from gateway.settings import ConfigError
from tests.helpers import Devsite, make_settings, records_of, site_table

CAMPUS = {
    "type": "network",
    "cidrs": ["192.0.2.0/24", "2001:db8::/48"],
    "email": "library@uni.example",
    "name": "University library",
    "entitlements": ["gold"],
}


@pytest.fixture()
def news(devsite: Devsite) -> FlaskClient:
    site = site_table(devsite.url, identity=["campus", "team"], require_entitlement="gold")
    settings = make_settings(
        {"news": site},
        gateway={"trusted_proxies": ["10.0.0.0/8"]},
        identity={
            "campus": CAMPUS,
            "team": {
                "type": "static",
                "users": [{"email": "a@example.com", "password_hash": hash_password("pw-123456")}],
            },
        },
    )
    return create_app(settings).test_client()


def _from(client: FlaskClient, address: str, peer: str = "10.0.0.5", **kw: Any) -> Any:
    return client.get(
        "/sso/news/login?return_url=" + kw.get("back", "/"),
        headers={"X-Forwarded-For": address},
        environ_base={"REMOTE_ADDR": peer},
    )


@pytest.mark.parametrize("address", ["192.0.2.77", "2001:db8:0:1::9"])
def test_a_campus_visitor_enters_as_the_library(
    news: FlaskClient, devsite: Devsite, address: str
) -> None:
    with records_of("gateway.audit") as audited:
        answer = _from(news, address, back=f"{devsite.url}/")
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert (
        "/api/2/session/redeem-token" in answer.headers["Location"]
        or "redeem-token" in answer.headers["Location"]
    )
    (granted,) = [r.__dict__ for r in audited if r.getMessage() == "sso_granted"]
    assert granted["email"] == "library@uni.example" and granted["provider"] == "campus"
    assert granted["subject"].startswith("network:") and "/" in granted["subject"]
    (handoff,) = [c for c in devsite.calls() if c.get("method") == "session/get-token"]
    assert handoff["params"]["full_name"] == "University library"


def test_a_visitor_from_elsewhere_gets_the_usual_choice(
    news: FlaskClient, devsite: Devsite
) -> None:
    elsewhere = _from(news, "198.51.100.20", back=f"{devsite.url}/")
    assert elsewhere.status_code == 200  # the static sign-in form, not the library
    spoofed = _from(news, "192.0.2.77", peer="203.0.113.9", back=f"{devsite.url}/")
    assert spoofed.status_code == 200  # the header from an untrusted peer counts for nothing
    assert [c for c in devsite.calls() if c.get("method") == "session/get-token"] == []


def test_a_network_identity_needs_its_ranges() -> None:
    doc = {
        "gateway": {"public_url": "https://sso.example.com", "secret_key": "s" * 32},
        "sites": {"x": {"url": "https://v.example.com", "api_token": "t" * 40}},
        "identity": {"campus": {"type": "network", "email": "lib@uni.example", "cidrs": []}},
    }
    with pytest.raises(ConfigError) as refused:
        parse_settings(doc, env={})
    assert any(p.startswith("identity.campus.cidrs") for p in refused.value.problems)
    doc["identity"]["campus"]["cidrs"] = ["192.0.2.0/24"]
    doc["identity"]["campus"]["name"] = "Library"
    settings = parse_settings(doc, env={})
    campus = settings.identities["campus"]
    assert campus.name == "campus" and campus.display_name == "Library"  # type: ignore[attr-defined]


def test_campus_access_ends_off_campus(news: FlaskClient, devsite: Devsite) -> None:
    """The institution's access holds per request: signing in on campus leaves no session
    that a visitor (or whoever they give the cookie to) could use from home."""
    assert _from(news, "192.0.2.77", back=f"{devsite.url}/").status_code == 302
    assert news.get_cookie("gw_session") is None and news.get_cookie("__Host-gw_session") is None
    on_campus = news.get(
        "/embed/news/1001",
        headers={"X-Forwarded-For": "192.0.2.77"},
        environ_base={"REMOTE_ADDR": "10.0.0.5"},
    )
    assert on_campus.status_code == 302 and "token=" in on_campus.headers["Location"]
    at_home = news.get(
        "/embed/news/1001",
        headers={"X-Forwarded-For": "198.51.100.20"},
        environ_base={"REMOTE_ADDR": "10.0.0.5"},
    )
    assert at_home.status_code == 302 and "/sso/news/login" in at_home.headers["Location"]


def test_a_campus_cookie_from_an_older_gateway_opens_nothing(news: FlaskClient) -> None:
    """A session for the institution issued before sessions stopped being kept for it (same
    secret key) is not taken either: campus access is decided per request only."""
    from gateway import cookies
    from gateway.identity.base import Identity

    runtime = news.application.extensions["gateway.runtime"]
    library = Identity("library@uni.example", provider="campus", entitlements=("gold",))
    cookie = runtime.sessions.dump(runtime.sessions.codec.new(library))
    news.set_cookie(runtime.cookies.name(cookies.SESSION), cookie)
    at_home = news.get(
        "/embed/news/1001",
        headers={"X-Forwarded-For": "198.51.100.20"},
        environ_base={"REMOTE_ADDR": "10.0.0.5"},
    )
    assert at_home.status_code == 302 and "/sso/news/login" in at_home.headers["Location"]
