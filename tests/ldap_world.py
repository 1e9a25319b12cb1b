"""The LDAP world: a real slapd (tests/ldap_server.py), the emulated 23 site and a gateway
with LDAP identities over StartTLS and ldaps, an Active-Directory-style one, one that does
not trust the directory's CA, and one with a short timeout for outage tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import create_app
from gateway.devsite import DevsiteOptions, create_devsite
from tests.helpers import (
    Devsite,
    LiveServer,
    forget_state,
    free_port,
    make_settings,
    site_table,
)
from tests.ldap_server import BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd


@dataclass
class LdapWorld:
    gateway: str
    devsite: Devsite
    slapd: Slapd
    app: Any

    def reset(self) -> None:
        self.devsite.reset()
        forget_state(self.app)

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [c for c in self.devsite.calls() if c.get("method") == method]


def running_ldap_world(folder: Path) -> Iterator[LdapWorld]:
    slapd = Slapd(folder)
    slapd.start()
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    devsite = Devsite(
        create_devsite(DevsiteOptions(remote_login_url=f"{gateway}/sso/intranet/login"))
    )
    common = {
        "type": "ldap",
        "ca_file": str(slapd.ca.ca_file),
        "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD,
        "base_dn": f"ou=people,{BASE}",
    }
    settings = make_settings(
        {
            "intranet": site_table(
                devsite.url, identity="dir", allow_email_domains=["example.com"]
            ),
            "groups": site_table(devsite.url, identity="dirs", allow_groups=["video"]),
            "members": site_table(devsite.url, identity="dir", allow_groups=["video"]),
            "ad": site_table(devsite.url, identity="ad"),
            "untrusted": site_table(devsite.url, identity="untrusted"),
            "quick": site_table(devsite.url, identity="quick"),
        },
        gateway={"public_url": gateway, "trusted_proxies": ["127.0.0.1/32"]},
        identity={
            # ldap:// upgraded with StartTLS, groups from memberOf
            "dir": {**common, "url": slapd.url, "start_tls": True},
            # ldaps://, groups by searching ou=groups
            "dirs": {**common, "url": slapd.tls_url, "group_base_dn": f"ou=groups,{BASE}"},
            # Active Directory's way of naming people
            "ad": {
                **common,
                "url": slapd.tls_url,
                "user_filter": "(&(objectClass=person)(|(sAMAccountName={username})"
                "(userPrincipalName={username})))",
            },
            "untrusted": {**common, "url": slapd.tls_url, "ca_file": ""},  # the system's CAs
            "quick": {**common, "url": slapd.url, "start_tls": True, "timeout": 1.0},
        },
    )
    app = create_app(settings)
    server = LiveServer(app, port)
    yield LdapWorld(gateway, devsite, slapd, app)
    server.stop()
    devsite.stop()
    slapd.stop()
