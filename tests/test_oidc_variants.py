"""OIDC paths the shared world does not take, each against its own real provider process:
client_secret_post, claims only in the ID token, key rotation, the provider down; and group
policy from the provider's groups claim (the shared world)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from gateway import create_app
from tests.formclient import FormClient
from tests.helpers import Devsite, LiveServer, free_port, make_settings, site_table
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProviderProcess
from tests.sso_world import World
from tests.test_sso import oidc_login, sign_in_at_idp


@dataclass
class OwnProvider:
    gateway: str
    idp: OidcProviderProcess
    devsite: Devsite


@contextmanager
def own_provider(
    devsite: Devsite, auth_method: str = "client_secret_basic", **kw: Any
) -> Iterator[OwnProvider]:
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    idp = OidcProviderProcess(
        free_port(),
        [f"{gateway}/sso/oidc/corp/callback"],
        [f"{gateway}/sso/signed-out"],
        auth_method=auth_method,
        **kw,
    )
    idp.start()
    settings = make_settings(
        {"intranet": site_table(devsite.url, identity="corp")},
        gateway={"public_url": gateway},
        identity={
            "corp": {
                "type": "oidc",
                "issuer": idp.issuer,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "token_endpoint_auth_method": auth_method,
            }
        },
    )
    server = LiveServer(create_app(settings), port)
    try:
        yield OwnProvider(gateway, idp, devsite)
    finally:
        server.stop()
        idp.stop()


def sign_in(world: OwnProvider, login: str = "alice") -> requests.Response:
    """Gateway -> provider -> back to the gateway's callback; the callback's answer."""
    browser = FormClient()
    page = browser.get(f"{world.gateway}/sso/intranet/login?return_url=/", timeout=15)
    back = browser.follow_until(
        sign_in_at_idp(browser, page, login), f"{world.gateway}/sso/oidc/corp/callback"
    )
    return browser.get(back.headers["Location"], allow_redirects=False, timeout=15)


def test_client_secret_post(devsite: Devsite) -> None:
    with own_provider(devsite, auth_method="client_secret_post") as world:
        done = sign_in(world)
    assert done.status_code == 302 and "redeem-token" in done.headers["Location"]
    (call,) = [c for c in devsite.calls() if c["method"] == "session/get-token"]
    assert call["params"]["email"] == "alice@example.com"


def test_claims_only_in_the_id_token(devsite: Devsite) -> None:
    """A provider without a userinfo endpoint: everything comes from the ID token."""
    with own_provider(devsite, id_token_claims=True, userinfo=False) as world:
        meta = requests.get(f"{world.idp.issuer}/.well-known/openid-configuration", timeout=5)
        assert "userinfo_endpoint" not in meta.json()
        done = sign_in(world)
    assert done.status_code == 302
    (call,) = [c for c in devsite.calls() if c["method"] == "session/get-token"]
    assert call["params"]["email"] == "alice@example.com"
    assert call["params"]["full_name"] == "Alice Example"


def test_provider_key_rotation(devsite: Devsite, monkeypatch: pytest.MonkeyPatch) -> None:
    with own_provider(devsite) as world:
        assert sign_in(world).status_code == 302
        world.idp.restart()  # a new signing key under a new key id
        monkeypatch.setattr("gateway.identity.jwks.REFETCH_INTERVAL", 0.0)  # not 5 s of waiting
        assert sign_in(world).status_code == 302


def test_provider_down_is_a_502(devsite: Devsite) -> None:
    settings = make_settings(
        {"intranet": site_table(devsite.url, identity="corp")},
        identity={
            "corp": {
                "type": "oidc",
                "issuer": f"http://127.0.0.1:{free_port()}",  # nothing listens
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            }
        },
    )
    response = (
        create_app(settings)
        .test_client()
        .get("/sso/intranet/login?return_url=/", headers={"Accept": "application/json"})
    )
    assert response.status_code == 502
    assert response.json["error"]["code"] == "identity_provider_unavailable"
    assert devsite.calls() == []


def test_groups_from_the_provider_decide_group_policy(world: World) -> None:
    world.reset()
    start = f"{world.gateway}/sso/videogroup/login?return_url=/"
    _, alice = oidc_login(world, "alice", start=start)  # groups: staff, video
    assert alice.status_code == 200 and "Welcome, Alice Example" in alice.text
    _, bob = oidc_login(world, "bob", start=start)  # no groups
    assert bob.status_code == 403 and "cannot enter" in bob.text
    emails = [c["params"]["email"] for c in world.calls("session/get-token")]
    assert emails == ["alice@example.com"]
