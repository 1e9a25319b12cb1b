"""Identity from an authenticating reverse proxy's headers, believed only from trusted peers.

The proxy vouches for the visitor on every request, so this provider also identifies visitors
on ``/embed``, ``/download`` and ``/protection`` directly (no sign-in round trip).
"""

from __future__ import annotations

from typing import Literal

from flask import Request
from pydantic import Field
from werkzeug.wrappers import Response

from gateway.clientip import is_trusted
from gateway.errors import Unauthorized
from gateway.identity.base import Identity, PendingLogin
from gateway.identity.provider_context import ProviderBase, ProviderContext
from gateway.settings_fields import HeaderName, IdentityModel, Text

MAX_GROUPS = 100


class HeaderSettings(IdentityModel):
    type: Literal["header"]
    email_header: HeaderName = "X-Forwarded-Email"
    name_header: HeaderName = "X-Forwarded-User"
    groups_header: HeaderName = "X-Forwarded-Groups"
    # Between group names in groups_header: a name containing it would be split in two
    # ("Finance, board" -> "Finance" and "board"), so pick one no group name contains.
    groups_separator: Text = Field(",", min_length=1, max_length=8)


class HeaderProvider(ProviderBase[HeaderSettings]):
    label = "Company sign-in"

    def __init__(self, settings: HeaderSettings, ctx: ProviderContext) -> None:
        super().__init__(settings, ctx)
        self._trusted = ctx.gateway.trusted_proxies

    def begin(self, request: Request, pending: PendingLogin) -> Response | Identity:
        # The TCP peer itself must be the proxy: X-Forwarded-For is no proof of anything here.
        if not self._from_proxy(request):
            raise Unauthorized(
                "Sign-in headers are accepted only from the trusted proxy.", code="untrusted_proxy"
            )
        identity = self.identify(request)
        if identity is None:
            raise Unauthorized("The proxy did not say who you are.", code="no_identity_header")
        return identity

    def identify(self, request: Request) -> Identity | None:
        if not self._from_proxy(request):
            return None
        email = request.headers.get(self._settings.email_header, "").strip()
        if not email:
            return None
        name = request.headers.get(self._settings.name_header, "").strip()
        raw_groups = request.headers.get(self._settings.groups_header, "")
        parts = raw_groups.split(self._settings.groups_separator)
        groups = tuple(g.strip() for g in parts if g.strip())
        return Identity(
            email=email, name=name[:200], groups=groups[:MAX_GROUPS], provider=self.name
        )

    def _from_proxy(self, request: Request) -> bool:
        return is_trusted(request.remote_addr or "", self._trusted)
