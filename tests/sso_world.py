"""One running world for the visitor-flow tests: a real OIDC provider, the emulated 23 site
whose remote login points at the gateway, and the gateway itself on a real port."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway.devsite import DevsiteOptions, create_devsite
from gateway.passwords import hash_password
from tests.cluster import Gateway, start_gateway
from tests.helpers import Devsite, free_port, make_settings, site_table
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProviderProcess

TEAM_PASSWORD = "correct horse battery staple"


def portal_identity() -> dict[str, str]:
    """The "portal" identity's table: paywall JWTs signed with PORTAL_SECRET."""
    return {
        "type": "jwt",
        "issuer": PORTAL_ISSUER,
        "audience": PORTAL_AUDIENCE,
        "secret": PORTAL_SECRET,
    }


OFFICE_SIZE = 40  # colleagues behind one NAT address (tests/test_hardening.py)


def office_users(password_hash: str) -> list[dict[str, str]]:
    return [
        {
            "email": f"colleague{i:02d}@example.com",
            "name": f"Colleague {i}",
            "password_hash": password_hash,
        }
        for i in range(OFFICE_SIZE)
    ]


PORTAL_SECRET = "portal-shared-secret-0123456789abcdef"
PORTAL_ISSUER = "https://portal.example.test"
PORTAL_AUDIENCE = "23-gateway"


@dataclass
class World:
    gateway: str
    devsite: Devsite
    idp: OidcProviderProcess
    served: Gateway

    @property
    def app(self) -> Any:
        return self.served.app

    def reset(self) -> None:
        """A clean slate per test: the site's call log and the gateway's shared state, so one
        test's login attempts never count against another's rate limits."""
        self.devsite.reset()
        self.served.forget_state()

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [c for c in self.devsite.calls() if c.get("method") == method]

    def portal_token(self, email: str, **claims: Any) -> str:
        """A paywall JWT from the "portal" identity, as a portal would mint it."""
        import secrets
        import time

        from joserfc import jwt
        from joserfc.jwk import OctKey

        now = int(time.time())
        payload = {
            "iss": PORTAL_ISSUER,
            "aud": PORTAL_AUDIENCE,
            "email": email,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            **claims,
        }
        return jwt.encode({"alg": "HS256"}, payload, OctKey.import_key(PORTAL_SECRET))


def _sites(url: str) -> dict[str, Any]:
    """The world's sites, one per case: an IdP, a password list, both, a proxy, none..."""
    return {
        "intranet": site_table(url, identity="corp", allow_email_domains=["example.com"]),
        "team": site_table(url, identity="team"),
        "multi": site_table(url, identity=["corp", "team"]),
        "proxied": site_table(url, identity="proxy", allow_groups=["video"]),
        "users": site_table(url, identity="team", login_mode="user"),
        "nosso": site_table(url),
        "staffonly": site_table(url, identity="team", allow_groups=["staff"]),
        "portal": site_table(url, identity=["portal", "team"]),
        "videogroup": site_table(url, identity="corp", allow_groups=["video"]),
    }


def _identities(issuer: str) -> dict[str, Any]:
    team_hash = hash_password(TEAM_PASSWORD)
    ada = {"email": "ada@example.com", "name": "Ada Lovelace", "password_hash": team_hash}
    nobody = {"email": "nobody@example.com", "name": "No Body", "password_hash": team_hash}
    return {
        "corp": {
            "type": "oidc",
            "label": "Example Corp account",
            "issuer": issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "email", "profile", "groups"],
        },
        "team": {"type": "static", "users": [ada, nobody, *office_users(team_hash)]},
        "proxy": {"type": "header"},
        "portal": {
            "type": "jwt",
            "issuer": PORTAL_ISSUER,
            "audience": PORTAL_AUDIENCE,
            "secret": PORTAL_SECRET,
        },
    }


def running_world(topology: str = "one-instance", redis_url: str = "") -> Iterator[World]:
    gw_port, idp_port = free_port(), free_port()
    gateway = f"http://127.0.0.1:{gw_port}"
    idp = OidcProviderProcess(
        idp_port,
        [f"{gateway}/sso/oidc/corp/callback"],
        [f"{gateway}/sso/signed-out"],
        backchannel_uri=f"{gateway}/sso/oidc/corp/backchannel-logout",
    )
    idp.start()
    devsite = Devsite(
        create_devsite(DevsiteOptions(remote_login_url=f"{gateway}/sso/intranet/login"))
    )
    build = lambda store: make_settings(  # noqa: E731
        _sites(devsite.url),
        gateway={"public_url": gateway, "trusted_proxies": ["127.0.0.1/32"]},
        identity=_identities(idp.issuer),
        store=store,
        admin={"identity": "team", "allow_emails": ["ada@example.com"]},
    )
    served = start_gateway(topology, build, gw_port, redis_url)
    yield World(served.url, devsite, idp, served)
    served.stop()
    devsite.stop()
    idp.stop()
