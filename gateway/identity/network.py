"""Institutional access by network: a library's or a school's address ranges enter as the
institution (the e-mail and name 23 sees, the entitlements it holds), decided only on the
client's address as ``trusted_proxies`` reveal it, never on a header from an untrusted peer.

It identifies each request by itself, so campus visitors enter without a chooser and their
``/embed`` links work directly; beside other identities on a site, everyone else gets the
usual choice. The range that matched is the identity's subject, so audit lines name it.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from flask import Request
from pydantic import Field
from werkzeug.wrappers import Response

from gateway.clientip import visitor_ip
from gateway.errors import Forbidden
from gateway.identity.base import Identity, PendingLogin
from gateway.identity.provider_context import ProviderBase, ProviderContext
from gateway.settings import Networks
from gateway.settings_fields import IdentityModel, RequiredText, Strings, Text


class NetworkSettings(IdentityModel):
    type: Literal["network"]
    # The table's key stays the identity's name; the file's ``name`` is the display name.
    name: str = Field("", validation_alias="_table_key")
    cidrs: Networks = Field(min_length=1)  # the institution's ranges, IPv4 and IPv6
    email: RequiredText  # who 23 sees (one account for the institution)
    display_name: Text = Field("", validation_alias="name")  # its name at 23 (else the key)
    entitlements: Strings = ()  # what the institution holds, for require_entitlement


class NetworkProvider(ProviderBase[NetworkSettings]):
    label = "Sign in through your institution"
    on_chooser = False  # it needs no button: it knows its visitors by their address

    def __init__(self, settings: NetworkSettings, ctx: ProviderContext) -> None:
        super().__init__(settings, ctx)
        self._trusted = ctx.gateway.trusted_proxies

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity:
        identity = self.identify(request)
        if identity is None:
            raise Forbidden(
                "This sign-in is for visitors on the institution's network.",
                code="not_on_network",
            )
        return identity

    def vouches_per_request_only(self) -> bool:
        return True  # off the network, the institution's access ends: no session carries it

    def identify(self, request: Request) -> Identity | None:
        try:
            address = ipaddress.ip_address(visitor_ip(request, self._trusted))
        except ValueError:
            return None
        matched = next((net for net in self._settings.cidrs if address in net), None)
        if matched is None:
            return None
        settings = self._settings
        return Identity(
            email=settings.email,
            name=settings.display_name or self.name,
            provider=self.name,
            entitlements=settings.entitlements,
            subject=f"network:{matched}",
        )
